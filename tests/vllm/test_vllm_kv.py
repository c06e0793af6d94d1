"""The elastic-KV pieces of the vLLM plugin that need no vLLM: views moved onto the pool, and the switch.

Real engines on the pool are test_vllm_elastic.py (slow, vLLM venv)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from prism_core.memory import CannotSchedule, ElasticKVCache, KvSpec
from prism_plugins.cpu.host import cpu_device
from prism_plugins.cpu.vmm import CpuVmm
from prism_plugins.frameworks.vllm.kv import rebase

torch = pytest.importorskip("torch")

# Layer l's block b: at l * BLOCKS * STRIDE + b * STRIDE in vLLM's buffer, at l * region + b * STRIDE on the pool.
LAYERS, BLOCKS, STRIDE = 3, 60, 4096


@pytest.fixture
def cache() -> Iterator[ElasticKVCache]:
    vmm = CpuVmm(cpu_device())
    spec = KvSpec(num_layers=LAYERS, block_size=1, token_shape=(STRIDE,), dtype="uint8", kv_buffers=1)
    with ElasticKVCache(spec, BLOCKS, backend=vmm, page_size=64 * 1024) as c:
        yield c
    vmm.close()


def vllm_views(device: str) -> dict[str, torch.Tensor]:
    """Per layer (blocks, K/V, tokens, channels) in bfloat16, cut from one backing buffer as vLLM does."""
    buf = torch.zeros(LAYERS * BLOCKS * STRIDE, dtype=torch.int8, device=device)
    per_layer = BLOCKS * STRIDE
    return {
        f"layer.{i}": buf[i * per_layer : (i + 1) * per_layer].view(torch.bfloat16).view(BLOCKS, 2, 16, 64)
        for i in range(LAYERS)
    }


def test_views_land_on_their_layer_regions(cache: ElasticKVCache) -> None:
    assert cache.geometry.region_bytes != BLOCKS * STRIDE  # pages round each layer's region up
    views = rebase(vllm_views("meta"), BLOCKS * STRIDE, cache.geometry)
    ids = cache.alloc(4)  # maps the page these blocks are on
    assert not isinstance(ids, CannotSchedule) and 0 not in ids.tolist()  # block 0 is the null block
    regions = cache.arrays()  # layer i's buffer, as the pool lays it out: (blocks, 1, STRIDE) uint8
    for i, view in enumerate(views.values()):
        assert view.shape == (BLOCKS, 2, 16, 64) and view.dtype == torch.bfloat16
        for b in ids.tolist():
            view[b].fill_(float(i + 1))
            raw = torch.from_numpy(regions[i][b].reshape(-1).copy()).view(torch.bfloat16)
            assert torch.all(raw == float(i + 1))


def test_bad_priority_is_one_line_and_no_patch() -> None:
    code = (
        "import sys; from prism_plugins.frameworks.vllm.activate import register; register(); "
        "from prism_plugins.frameworks.vllm import kv; print('installed', kv.installed() is not None)"
    )
    env = {"PATH": "/usr/bin:/bin", "PRISM_ELASTIC_KV": "1", "PRISM_KV_PRIORITY": "high"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert out.stderr.strip() == "prism: elastic KV off: PRISM_KV_PRIORITY must be an integer, got 'high'"
    assert out.stdout.split() == ["installed", "False"]
