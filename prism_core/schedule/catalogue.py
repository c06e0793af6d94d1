"""Model catalogue and device specs for the simulator: what a model weighs and what a device can do.

Figures and their sources (bf16/fp16 weights, 2 bytes per parameter; KV bytes per token = 2 (K and V) x layers
x KV heads x head dim x 2 bytes):
- Llama 3.2 1B / 3B, Llama 3.1 8B / 70B: parameter counts, layers, hidden size, 8 KV heads (GQA), head dim
  64 (1B) or 128: the models' config.json on the Hugging Face Hub (meta-llama) and "The Llama 3 Herd of
  Models" (Dubey et al., 2024, Table 3).
- Llama 2 7B / 13B: "Llama 2: Open Foundation and Fine-Tuned Chat Models" (Touvron et al., 2023, Table 1);
  multi-head attention (KV heads = heads: 32 and 40, head dim 128).
- H100 SXM5 80GB: 3.35 TB/s HBM3, 989 TFLOP/s dense BF16, PCIe Gen5 x16 (64 GB/s each way): NVIDIA H100
  Tensor Core GPU datasheet. A100 SXM4 80GB / 40GB: 2,039 / 1,555 GB/s, 312 TFLOP/s dense BF16, PCIe Gen4
  x16 (32 GB/s each way): NVIDIA A100 datasheet. L4: 24 GB GDDR6, 300 GB/s, 121 TFLOP/s dense BF16, PCIe Gen4
  x16: NVIDIA L4 datasheet. "80GB" parts expose 80 GiB; we use GiB for all of them.
- cpu-1core: one core of this project's 2-core build machine (Intel Xeon, 24 GiB), MEASURED, not from a
  datasheet: `OPENBLAS_NUM_THREADS=1 python -c "from prism_core.schedule.validation.cpu_spec import *;
  print(copy_bandwidth_Bps(repeats=30), matmul_flops(n=2048, repeats=8))"` gave 22.2 GB/s (256 MiB numpy copy,
  read + write, best of 30) and 145.5 GFLOP/s (fp32 matmul, best of 8) on 2026-11-21, load average 3.4 (the
  machine is shared, so the best run is the ceiling). Weights already sit in host memory: loading is a copy.
  `prism simulate --validate-cpu` measures these again each run. Its model is `tiny-random-llama`, the
  transformers plugin's 4.5 M-parameter fp32 Llama (plugins/frameworks/transformers/tiny.py: 4 layers, width
  256, 2 KV heads of 64).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import Field, ValidationError

from prism_core.errors import UsageError
from prism_core.models import Frozen

T = TypeVar("T")

GiB = 2**30
TTFT_SLO_TOKENS = 2048  # a model's TTFT SLO is for a prompt this long; longer prompts get proportionally more
KV_BLOCK_TOKENS = 16  # tokens per KV block, as vLLM and SGLang page their caches
PAGE_BYTES_PER_LAYER = 2 * 2**20  # kvcached's default 2 MiB physical page, per layer and per K or V


def ttft_slo_factor(prompt_tokens: Any) -> Any:
    """How much a request's TTFT SLO stretches for its prompt: 1 up to TTFT_SLO_TOKENS, then linear (prefill is)."""
    return np.maximum(1.0, np.asarray(prompt_tokens) / TTFT_SLO_TOKENS)


class ModelSpec(Frozen):
    """One model in the catalogue. SLOs left out are derived from `slo_scale` (see `with_slos`)."""

    name: str = Field(min_length=1)
    params: float = Field(gt=0, description="parameter count")
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0, description="model width, for the attention FLOPs")
    kv_bytes_per_token: int = Field(gt=0, description="KV cache bytes per token, all layers, K and V")
    dtype_bytes: int = Field(2, gt=0)
    tp: int = Field(1, ge=1, description="tensor-parallel degree: devices one instance spans")
    slo_ttft_s: float | None = Field(
        None, gt=0, description="time-to-first-token SLO for a prompt of TTFT_SLO_TOKENS (longer: proportionally more)"
    )
    slo_tpot_s: float | None = Field(None, gt=0, description="time-per-output-token SLO, seconds")

    @property
    def weight_bytes(self) -> int:
        return int(self.params * self.dtype_bytes)

    @property
    def page_bytes(self) -> int:
        """One KV page id spans every layer's K and V (kvcached's layout), so it costs this much memory."""
        return PAGE_BYTES_PER_LAYER * self.layers * 2

    @property
    def blocks_per_page(self) -> int:
        return max(1, self.page_bytes // (self.kv_bytes_per_token * KV_BLOCK_TOKENS))


class DeviceSpec(Frozen):
    """One accelerator (or a slice or gang of them, see `scaled` and `combined`)."""

    name: str = Field(min_length=1)
    memory_bytes: int = Field(gt=0)
    bandwidth_Bps: float = Field(gt=0, description="memory bandwidth, bytes/s")
    flops: float = Field(gt=0, description="dense FLOP/s in the serving dtype (BF16 on accelerators)")
    h2d_Bps: float = Field(gt=0, description="host-to-device bandwidth each way, bytes/s (weight loading)")

    def scaled(self, share: float) -> DeviceSpec:
        """A fixed slice of this device (static partitioning): share of memory, bandwidth and compute."""
        return DeviceSpec(
            name=f"{self.name}x{share:.3g}",
            memory_bytes=int(self.memory_bytes * share),
            bandwidth_Bps=self.bandwidth_Bps * share,
            flops=self.flops * share,
            h2d_Bps=self.h2d_Bps,
        )

    @staticmethod
    def combined(specs: Iterable[DeviceSpec]) -> DeviceSpec:
        """Devices working as one tensor-parallel gang: capacities add, weight loading runs in parallel."""
        parts = list(specs)
        if len(parts) == 1:
            return parts[0]
        return DeviceSpec(
            name="+".join(p.name for p in parts),
            memory_bytes=sum(p.memory_bytes for p in parts),
            bandwidth_Bps=sum(p.bandwidth_Bps for p in parts),
            flops=sum(p.flops for p in parts),
            h2d_Bps=sum(p.h2d_Bps for p in parts),
        )


class Catalogue(Frozen):
    """Models and device types, by name. `prism simulate --catalogue FILE` reads one of these as JSON."""

    schema_version: int = 1
    models: list[ModelSpec]
    devices: list[DeviceSpec]
    default_mix: list[str] = Field(default_factory=list, description="model names drawn for `--models N`")

    def model(self, name: str) -> ModelSpec:
        return _lookup({m.name: m for m in self.models}, name, "model")

    def device(self, name: str) -> DeviceSpec:
        return _lookup({d.name: d for d in self.devices}, name, "device type")


def _lookup(items: dict[str, T], name: str, what: str) -> T:
    if name not in items:
        raise UsageError(f"unknown {what} {name!r} (known: {', '.join(sorted(items))})")
    return items[name]


def _llama(name: str, params: float, layers: int, hidden: int, kv_heads: int, head_dim: int, tp: int = 1) -> ModelSpec:
    return ModelSpec(
        name=name,
        params=params,
        layers=layers,
        hidden=hidden,
        kv_bytes_per_token=2 * layers * kv_heads * head_dim * 2,
        tp=tp,
    )


BUILTIN = Catalogue(
    models=[
        _llama("llama-3.2-1b", 1.24e9, 16, 2048, 8, 64),
        _llama("llama-3.2-3b", 3.21e9, 28, 3072, 8, 128),
        _llama("llama-2-7b", 6.74e9, 32, 4096, 32, 128),
        _llama("llama-3.1-8b", 8.03e9, 32, 4096, 8, 128),
        _llama("llama-2-13b", 13.0e9, 40, 5120, 40, 128),
        _llama("llama-3.1-70b", 70.6e9, 80, 8192, 8, 128, tp=2),
        ModelSpec(
            name="tiny-random-llama", params=4_458_752, layers=4, hidden=256, kv_bytes_per_token=4096, dtype_bytes=4
        ),
    ],
    devices=[
        DeviceSpec(name="h100", memory_bytes=80 * GiB, bandwidth_Bps=3.35e12, flops=989e12, h2d_Bps=64e9),
        DeviceSpec(name="a100-80gb", memory_bytes=80 * GiB, bandwidth_Bps=2.039e12, flops=312e12, h2d_Bps=32e9),
        DeviceSpec(name="a100-40gb", memory_bytes=40 * GiB, bandwidth_Bps=1.555e12, flops=312e12, h2d_Bps=32e9),
        DeviceSpec(name="l4", memory_bytes=24 * GiB, bandwidth_Bps=300e9, flops=121e12, h2d_Bps=32e9),
        DeviceSpec(name="cpu-1core", memory_bytes=24 * GiB, bandwidth_Bps=22.2e9, flops=145.5e9, h2d_Bps=22.2e9),
    ],
    # Small models dominate multi-model fleets (the Prism prototype served 1B-8B models); 13B adds weight.
    default_mix=["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "llama-3.1-8b", "llama-2-7b", "llama-2-13b"],
)


def load_catalogue(path: Path) -> Catalogue:
    """Read a catalogue JSON file; a bad file (or an SLO <= 0) is a UsageError naming the first problem."""
    try:
        return Catalogue.model_validate(json.loads(path.read_text()))
    except OSError as exc:
        raise UsageError(f"cannot read catalogue {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"catalogue {path} is not JSON: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UsageError(f"catalogue {path}: {where}: {err['msg']}") from exc
