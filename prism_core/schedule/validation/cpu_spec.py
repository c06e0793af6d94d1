"""Measure this host as a simulator `DeviceSpec`: memory bandwidth (numpy copy) and FLOP/s (numpy matmul).

Run it with one BLAS thread (OPENBLAS_NUM_THREADS=1, set before numpy loads) to describe one core, the way the
validation's engine runs (torch with one thread). Each figure is the best of a few repeats: the roofline is a
ceiling, and on a shared machine the best run is the one least disturbed by neighbours.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from prism_core.schedule.catalogue import DeviceSpec

COPY_BYTES = 256 * 2**20
MATMUL_N = 1024


def _best(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def copy_bandwidth_Bps(nbytes: int = COPY_BYTES, repeats: int = 5) -> float:
    """Bytes moved per second by a large array copy (each byte counted once read and once written)."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    return 2 * nbytes / _best(lambda: np.copyto(dst, src), repeats)


def matmul_flops(n: int = MATMUL_N, dtype: str = "float32", repeats: int = 5) -> float:
    """FLOP/s of an n x n matrix product (2 n^3 FLOPs) in `dtype`."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    a @ b  # warm-up: BLAS thread pool and caches
    return 2 * n**3 / _best(lambda: a @ b, repeats)


def host_memory_bytes() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def measure_cpu(name: str = "cpu", dtype: str = "float32") -> DeviceSpec:
    """This host as a device: memory, copy bandwidth, matmul FLOP/s in `dtype`. Weights are already in host
    memory, so 'host-to-device' loading is a copy at the same bandwidth."""
    bw = copy_bandwidth_Bps()
    return DeviceSpec(
        name=name, memory_bytes=host_memory_bytes(), bandwidth_Bps=bw, flops=matmul_flops(dtype=dtype), h2d_Bps=bw
    )
