"""Per-layer tensor views over a reservation, shaped like the engine's own KV tensors.

The views point at the reserved range itself, so their addresses never change while pages come and go;
touching a block whose page is unmapped faults (cpu backend) instead of reading garbage.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import Any, Literal

from prism_core.errors import UsageError
from prism_core.memory.spec import KvSpec

Layout = Literal["kv_first", "blocks_first", "separate"]
LAYOUTS: tuple[Layout, ...] = ("kv_first", "blocks_first", "separate")


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where layer buffers lie: buffer `j` (layer j // kv_buffers) starts at `base + j * region_bytes`."""

    spec: KvSpec
    base: int
    region_bytes: int
    num_blocks: int

    def shapes(self, layout: Layout) -> list[tuple[int, tuple[int, ...], tuple[int, ...]]]:
        """(element offset, size, stride) of every view of one layer, for layer 0; add `layer_offset(l)`."""
        s = self.spec
        if layout not in LAYOUTS:
            raise UsageError(f"unknown KV layout {layout!r} (known: {', '.join(LAYOUTS)})")
        token = math.prod(s.token_shape)
        inner = tuple(math.prod(s.token_shape[i + 1 :]) for i in range(len(s.token_shape)))
        region = self.region_bytes // s.itemsize
        per_block = (self.num_blocks, s.block_size, *s.token_shape), (s.block_size * token, token, *inner)
        if layout == "separate" or s.kv_buffers == 1:
            return [(b * region, *per_block) for b in range(s.kv_buffers)]
        if layout == "kv_first":
            return [(0, (s.kv_buffers, *per_block[0]), (region, *per_block[1]))]
        size, stride = per_block
        return [(0, (size[0], s.kv_buffers, *size[1:]), (stride[0], region, *stride[1:]))]

    def layer_offset(self, layer: int) -> int:
        return layer * self.spec.kv_buffers * (self.region_bytes // self.spec.itemsize)

    def total_bytes(self) -> int:
        return self.region_bytes * self.spec.buffers


def _raw(geometry: Geometry) -> Any:
    return (ctypes.c_uint8 * geometry.total_bytes()).from_address(geometry.base)


def torch_bytes(geometry: Geometry) -> Any:
    """The whole reservation as one flat uint8 torch tensor (for engines that lay their own views over it)."""
    import torch  # lazily: prism_core never imports torch at module level

    return torch.frombuffer(_raw(geometry), dtype=torch.uint8)


def torch_views(geometry: Geometry, layout: Layout = "kv_first") -> list[Any]:
    """Per layer: one torch tensor (kv_first: (kv_buffers, blocks, block_size, *token_shape); blocks_first:
    (blocks, kv_buffers, ...); MLA: (blocks, block_size, *token_shape)), or a tuple of K and V ("separate")."""
    import torch

    flat = torch_bytes(geometry).view(getattr(torch, geometry.spec.dtype))
    return _build(geometry, layout, lambda off, size, stride: torch.as_strided(flat, size, stride, off))


def numpy_views(geometry: Geometry, layout: Layout = "kv_first") -> list[Any]:
    """The same views as numpy arrays (dtypes numpy has: not bfloat16 or float8)."""
    import numpy as np

    try:
        dtype = np.dtype(geometry.spec.dtype)
    except TypeError as exc:
        raise UsageError(f"numpy has no dtype {geometry.spec.dtype!r}; use torch_views") from exc
    flat = np.frombuffer(_raw(geometry), dtype=dtype)
    item = dtype.itemsize

    def make(off: int, size: tuple[int, ...], stride: tuple[int, ...]) -> Any:
        return np.lib.stride_tricks.as_strided(flat[off:], size, tuple(x * item for x in stride))

    return _build(geometry, layout, make)


def _build(geometry: Geometry, layout: Layout, make: Any) -> list[Any]:
    out: list[Any] = []
    shapes = geometry.shapes(layout)
    for layer in range(geometry.spec.num_layers):
        base = geometry.layer_offset(layer)
        views = [make(base + off, size, stride) for off, size, stride in shapes]
        out.append(tuple(views) if len(views) > 1 else views[0])
    return out
