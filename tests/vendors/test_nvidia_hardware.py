"""Real NVIDIA hardware (marked `gpu`): skipped with the probe's reason where there is none, as on CPU CI."""

from __future__ import annotations

from typing import Any

import pytest

from prism_core.export import names
from prism_core.models import Device, Unavailable
from prism_plugins.nvidia.faults import NvmlClockLock
from prism_plugins.nvidia.probe import probe
from prism_plugins.nvidia.telemetry import NvmlTelemetry, nvml_telemetry
from prism_plugins.nvidia.timing import cuda_timing

pytestmark = pytest.mark.gpu


@pytest.fixture
def gpu() -> Device:
    devices = probe()
    if isinstance(devices, Unavailable):
        pytest.skip(f"no NVIDIA GPU here: {devices}")
    return devices[0]


@pytest.fixture
def torch_cuda() -> Any:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


def test_transformers_forward_device_time_matches_torch_events(gpu: Device, torch_cuda: Any) -> None:
    """Prism's pooled driver events and torch.cuda.Event time the same forwards within 10%."""
    torch = torch_cuda
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=8, num_attention_heads=16, vocab_size=8192
    )
    model = transformers.LlamaForCausalLM(config).to("cuda", torch.float16).eval()
    ids = torch.randint(0, 8192, (8, 256), device="cuda")
    backend = cuda_timing(gpu)
    assert not isinstance(backend, Unavailable), backend
    pairs = []
    with torch.inference_mode():
        model(ids)  # warm-up
        for _ in range(20):
            t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0.record()
            start = backend.mark()
            model(ids)
            end = backend.mark()
            t1.record()
            pairs.append((t0, t1, start, end))
    torch.cuda.synchronize()  # the test's own wait; the backend never synchronises
    ours = sum(backend.elapsed_ns(s, e) or 0 for _, _, s, e in pairs) / 1e6
    theirs = sum(a.elapsed_time(b) for a, b, _, _ in pairs)
    backend.close()
    assert ours == pytest.approx(theirs, rel=0.10), f"prism {ours:.3f} ms vs torch {theirs:.3f} ms"


def test_telemetry_reads_what_the_card_has(gpu: Device) -> None:
    sampler = nvml_telemetry(gpu)
    assert isinstance(sampler, NvmlTelemetry), sampler
    sample = sampler.sample()
    sampler.close()
    for field in (names.HW_GPU_UTILIZATION, names.HW_GPU_MEMORY_USAGE, names.PRISM_GPU_CLOCK_SM, names.HW_POWER):
        assert field in sample.values, f"{field}: {sample.unreadable.get(field)}"
    assert all(why.startswith(("NVMLError", "NVLink", "XID", "no earlier")) for why in sample.unreadable.values())


def test_clock_lock_shows_in_telemetry_and_is_restored(gpu: Device, torch_cuda: Any) -> None:
    import pynvml

    fault = NvmlClockLock(pynvml, gpu)
    try:
        fault.start(1.0)
    except PermissionError as exc:
        pytest.skip(str(exc))
    try:
        sampler = nvml_telemetry(gpu)
        assert isinstance(sampler, NvmlTelemetry)
        a = torch_cuda.randn(4096, 4096, device="cuda")
        for _ in range(50):
            a = a @ a / 4096
        sm_hz = sampler.sample().values[names.PRISM_GPU_CLOCK_SM]
        sampler.close()
        assert fault.locked_mhz is not None and sm_hz <= fault.locked_mhz * 1e6 * 1.05
    finally:
        fault.stop()
    assert not fault.active
