"""Faults that load an accelerator from a side stream with torch: compute preemption and copy saturation.

One `TorchLoad` runs one workload on its own stream (never the engine's) from a daemon thread, with a duty cycle
equal to the intensity: it launches a burst, waits for *its own* stream (the engine's streams are never
synchronised), then idles so that busy / (busy + idle) = intensity. Workloads:

- `gemm`: square matrix multiplies, which take SMs / compute units from the engine's kernels;
- `d2d`: device-to-device copies of a large buffer, which take device memory bandwidth;
- `h2d`: pinned host-to-device copies, which take the PCIe link (and the copy engine).

torch is imported in `start`, never before. `device_type` is torch's name for the accelerator module ("cuda"
for both CUDA and ROCm builds, "npu" with torch_npu) or "cpu", where streams do not exist and the loop runs
inline: that is how the lifecycle is tested on hosts without an accelerator.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from prism_core.faults.base import check_intensity

Workload = Literal["gemm", "d2d", "h2d"]

RESOURCES: dict[Workload, str] = {"gemm": "gpu.compute", "d2d": "gpu.memory_bandwidth", "h2d": "gpu.pcie"}
DESCRIPTIONS: dict[Workload, str] = {
    "gemm": "GEMM loop on a side stream preempts the engine's kernels (duty cycle = intensity)",
    "d2d": "device-to-device copies on a side stream saturate memory bandwidth (duty cycle = intensity)",
    "h2d": "pinned host-to-device copies on a side stream saturate PCIe (duty cycle = intensity)",
}
BURST = 8  # operations per burst between waits on the side stream


def _default_sizes(device_type: str) -> dict[Workload, int]:
    if device_type == "cpu":  # small: lifecycle tests, not a real squeeze
        return {"gemm": 128, "d2d": 1 << 20, "h2d": 1 << 20}
    return {"gemm": 8192, "d2d": 512 << 20, "h2d": 256 << 20}


class TorchLoad:
    """A FaultInjector running `workload` on `device_type:index` at a duty cycle of `intensity`."""

    def __init__(
        self,
        name: str,
        workload: Workload,
        *,
        device_type: str = "cuda",
        index: int = 0,
        size: int | None = None,
    ) -> None:
        self.name = name
        self.workload = workload
        self.resource = RESOURCES[workload]
        self.description = DESCRIPTIONS[workload]
        self.device_type = device_type
        self.index = index
        self.size = size or _default_sizes(device_type)[workload]
        self.bursts = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None

    def start(self, intensity: float) -> int:
        check_intensity(intensity, self.name)
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running; stop it first")
        onset = time.time_ns()
        burst, wait, stream = self._prepare()  # allocation errors surface here, in the caller's thread
        self._stop.clear()
        self.bursts = 0
        self.error = None
        self._thread = threading.Thread(
            target=self._loop, args=(burst, wait, stream, intensity), name=f"prism-{self.name}", daemon=True
        )
        self._thread.start()
        return onset

    def stop(self) -> int:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return time.time_ns()

    def _prepare(self) -> tuple[Callable[[], object], Callable[[], None], Any]:
        import torch

        if self.device_type == "cpu":
            device = torch.device("cpu")
            stream: Any = None
            wait: Callable[[], None] = _nothing
        else:
            accel = getattr(torch, self.device_type, None)
            if accel is None or not accel.is_available():
                raise RuntimeError(f"{self.name}: torch has no usable '{self.device_type}' device here")
            device = torch.device(self.device_type, self.index)
            stream = accel.Stream(device=device)
            wait = stream.synchronize  # waits for this side stream only
        n = self.size
        if self.workload == "gemm":
            dtype = torch.float32 if self.device_type == "cpu" else torch.float16
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            out = torch.empty_like(a)
            return (lambda: torch.matmul(a, b, out=out)), wait, stream
        dst = torch.empty(n, dtype=torch.uint8, device=device)
        if self.workload == "d2d":
            src = torch.empty_like(dst)
        else:
            src = torch.empty(n, dtype=torch.uint8, pin_memory=self.device_type != "cpu")
        return (lambda: dst.copy_(src, non_blocking=True)), wait, stream

    def _loop(self, op: Callable[[], object], wait: Callable[[], None], stream: Any, intensity: float) -> None:
        ctx = contextlib.nullcontext() if stream is None else _stream_context(self.device_type, stream)
        try:
            with ctx:
                while not self._stop.is_set():
                    t0 = time.perf_counter()
                    for _ in range(BURST):
                        op()
                    wait()
                    busy = time.perf_counter() - t0
                    self.bursts += 1
                    if intensity < 1:
                        self._stop.wait(busy * (1 - intensity) / intensity)
        except BaseException as exc:  # kept for the caller (a device fault mid-run); the thread just ends
            self.error = exc


def torch_loads(plugin: str, device_type: str, index: int = 0) -> list[TorchLoad]:
    """The three loads, named '<plugin>.compute_preemption', '.d2d_copy' and '.h2d_copy'."""
    return [
        TorchLoad(f"{plugin}.compute_preemption", "gemm", device_type=device_type, index=index),
        TorchLoad(f"{plugin}.d2d_copy", "d2d", device_type=device_type, index=index),
        TorchLoad(f"{plugin}.h2d_copy", "h2d", device_type=device_type, index=index),
    ]


def torch_has(device_type: str, build: str | None = None) -> bool:
    """True when torch imports and has a usable `device_type` device; `build` ('cuda' or 'hip') also requires
    that torch build, since ROCm's torch answers under torch.cuda too. Imports torch: call it only once the
    vendor's own probe has found devices."""
    try:
        import torch

        accel = getattr(torch, device_type, None)
        if accel is None or not accel.is_available():
            return False
        return build is None or getattr(torch.version, build, None) is not None
    except Exception:  # a broken torch install means no torch faults, not a failed plugin
        return False


def _nothing() -> None:
    return None


def _stream_context(device_type: str, stream: Any) -> Any:
    import torch

    return getattr(torch, device_type).stream(stream)
