"""Physically motivated workload features: what a batch iteration has to move and compute.

- decode reads every cached key and value once per step: cost ~ batch_size x KV length (`decode_kv`), the
  memory-bandwidth term LatencyPrism found dominant;
- prefill computes every prompt token (`prefill_tokens`) and attends quadratically (`prefill_attn` ~ B x L^2);
- `batch_size` carries the per-sequence fixed costs (sampling, scheduling, launch), `kv_len` the per-step cost
  of one sequence's attention.

The same terms, linear with non-negative coefficients (`base_terms`), give the model a physical base that
extrapolates: trees alone predict an unseen batch size as the largest one they saw (docs/detect.md, "Base").

Maximum lengths and separate input/output lengths are deliberately left out: on whole-job hold-outs they let
the trees memorise job identities (see docs/detect.md, "Features").
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from prism_core.detect.table import DECODE, MIXED, MODE_CODES, PREFILL, WorkloadTable
from prism_core.models import BatchRecord

FEATURE_SPEC = "prism.workload.v1"
FEATURE_NAMES: tuple[str, ...] = ("batch_size", "kv_len", "decode_kv", "prefill_tokens", "prefill_attn", "mode")


def table_features(t: WorkloadTable) -> npt.NDArray[np.float64]:
    """The feature matrix (rows x FEATURE_NAMES) of a table."""
    kv = t.avg_input + t.avg_output
    decodes = (t.mode == DECODE) | (t.mode == MIXED)
    prefills = (t.mode == PREFILL) | (t.mode == MIXED)
    return np.column_stack(
        [
            t.batch_size,
            kv,
            np.where(decodes, t.batch_size * kv, 0.0),
            t.prefill_tokens,
            np.where(prefills, t.batch_size * kv * kv, 0.0),
            t.mode.astype(np.float64),
        ]
    )


def record_features(r: BatchRecord) -> npt.NDArray[np.float64]:
    """The same features for one record, built without a table (the online path)."""
    mode = MODE_CODES[r.mode]
    b = float(r.batch_size)
    kv = r.avg_input_len + r.avg_output_len
    return np.array(
        (
            b,
            kv,
            b * kv if mode != PREFILL else 0.0,
            float(r.prefill_tokens),
            b * kv * kv if mode != DECODE else 0.0,
            float(mode),
        ),
        dtype=np.float64,
    )


def base_terms(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Terms of the linear base from a feature matrix: a fixed cost per decode and per prefill step, then
    batch_size, decode_kv, prefill_tokens and prefill_attn."""
    mode = x[:, 5]
    decodes = (mode == DECODE) | (mode == MIXED)
    prefills = (mode == PREFILL) | (mode == MIXED)
    return np.column_stack([decodes, prefills, x[:, 0], x[:, 2], x[:, 3], x[:, 4]]).astype(np.float64)
