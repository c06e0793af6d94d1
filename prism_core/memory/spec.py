"""What the engine's KV cache looks like: layers, K/V (or MLA) buffers, block size, per-token shape, dtype."""

from __future__ import annotations

import math
from dataclasses import dataclass

from prism_core.errors import UsageError

DTYPE_BYTES = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "int8": 1,
    "uint8": 1,
}
MIB = 2**20
DEFAULT_PAGE_SIZE = 2 * MIB  # the CUDA VMM granularity; any multiple of the backend's granularity works


@dataclass(frozen=True, slots=True)
class KvSpec:
    """One model's KV cache. `kv_buffers` is 2 for K and V (MHA/GQA), 1 for MLA's joint latent buffer.
    `token_shape` is what one token occupies in one layer's buffer, e.g. (kv_heads, head_dim)."""

    num_layers: int
    block_size: int
    token_shape: tuple[int, ...]
    dtype: str = "float16"
    kv_buffers: int = 2

    def __post_init__(self) -> None:
        for name in ("num_layers", "block_size", "kv_buffers"):
            if getattr(self, name) < 1:
                raise UsageError(f"KvSpec.{name} must be >= 1, got {getattr(self, name)}")
        if not self.token_shape or min(self.token_shape) < 1:
            raise UsageError(f"KvSpec.token_shape must be positive sizes, got {self.token_shape}")
        if self.dtype not in DTYPE_BYTES:
            raise UsageError(f"KvSpec.dtype {self.dtype!r} is not one of {', '.join(DTYPE_BYTES)}")

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def buffers(self) -> int:
        """Separately mapped buffers: one per layer and K/V."""
        return self.num_layers * self.kv_buffers

    @property
    def block_bytes(self) -> int:
        """Bytes of one block in one buffer."""
        return self.block_size * math.prod(self.token_shape) * self.itemsize
