"""Measured step costs: batch records read from a file, a linear fit to them, and its error on other records.

`prism simulate --profile PATH` takes the JSONL that `prism run --export jsonl:PATH` writes (lines of
`"kind": "batch"`; other kinds are skipped) or a CSV with BatchRecord column names. A record maps onto the
simulator's step signature as follows: its `kv_tokens` count the prompt tokens a prefill writes as well as the
cached tokens decode requests read, while the simulator's `kv_tokens` are only the latter, so the tokens read
are `kv_tokens - prefill_tokens`; the attention term of a prefill (sum of squared prompt lengths) is
`prefill_tokens x avg_input_len`, exact when the prompts of a batch share one length (0 when the column is
absent).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from prism_core.errors import UsageError
from prism_core.models import BatchRecord
from prism_core.schedule.catalogue import DeviceSpec, ModelSpec
from prism_core.schedule.cost import RooflineCost, StepCost

FloatArray = npt.NDArray[np.float64]
PROFILE_COLUMNS = ("duration_ns", "prefill_tokens", "decode_tokens", "kv_tokens")
MIN_ROWS = 4


@dataclass(frozen=True, slots=True)
class StepSamples:
    """Measured iterations as columns, in the simulator's terms (see the module docstring)."""

    duration_s: FloatArray
    prefill: FloatArray
    prefill_sq: FloatArray
    decode: FloatArray
    kv_read: FloatArray
    batch: FloatArray
    input_len: FloatArray
    models: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.duration_s)

    def select(self, mask: npt.NDArray[np.bool_]) -> StepSamples:
        cols = {name: getattr(self, name)[mask] for name in _COLUMNS}
        return StepSamples(**cols, models=self.models)

    def features(self) -> FloatArray:
        return np.column_stack([np.ones(len(self)), self.prefill, self.prefill_sq, self.decode, self.kv_read])


_COLUMNS = ("duration_s", "prefill", "prefill_sq", "decode", "kv_read", "batch", "input_len")


def _samples(rows: list[dict[str, float]], models: set[str]) -> StepSamples:
    def col(name: str) -> FloatArray:
        return np.asarray([r.get(name, 0.0) for r in rows], dtype=np.float64)

    prefill = col("prefill_tokens")
    return StepSamples(
        duration_s=col("duration_ns") / 1e9,
        prefill=prefill,
        prefill_sq=prefill * col("avg_input_len"),
        decode=col("decode_tokens"),
        kv_read=np.maximum(col("kv_tokens") - prefill, 0.0),
        batch=col("batch_size"),
        input_len=col("avg_input_len"),
        models=tuple(sorted(models)),
    )


def _read_jsonl(path: Path, text: str) -> tuple[list[dict[str, float]], set[str]]:
    rows, models = [], set()
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or obj.get("kind") != "batch":
                continue
            rec = BatchRecord.model_validate(obj)
        except (json.JSONDecodeError, ValidationError) as exc:
            why = str(exc).splitlines()[0]
            raise UsageError(f"profile {path} line {line_no} is not a batch record: {why}") from exc
        models.add(rec.model)
        rows.append({c: float(getattr(rec, c)) for c in (*PROFILE_COLUMNS, "avg_input_len", "batch_size")})
    return rows, models


def _read_csv(path: Path, text: str) -> tuple[list[dict[str, float]], set[str]]:
    reader = csv.DictReader(text.splitlines())
    fields = reader.fieldnames or []
    missing = [c for c in PROFILE_COLUMNS if c not in fields]
    if missing:
        raise UsageError(f"profile {path} lacks column(s) {', '.join(missing)} (needs {PROFILE_COLUMNS})")
    wanted = [c for c in (*PROFILE_COLUMNS, "avg_input_len", "batch_size") if c in fields]
    rows, models = [], set()
    for line_no, r in enumerate(reader, start=2):
        try:
            rows.append({c: float(r[c]) for c in wanted})
        except (ValueError, TypeError) as exc:
            raise UsageError(f"profile {path} line {line_no} has a non-numeric value: {exc}") from exc
        if r.get("model"):
            models.add(r["model"])
    return rows, models


def read_records(path: Path) -> StepSamples:
    """Batch records from a JSONL export (`prism run --export jsonl:PATH`) or a CSV with BatchRecord columns."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read profile {path}: {exc.strerror}") from exc
    rows, models = (_read_jsonl if text.lstrip().startswith("{") else _read_csv)(path, text)
    s = _samples(rows, models)
    if (s.duration_s <= 0).any() or (s.features() < 0).any():
        raise UsageError(f"profile {path} has a non-positive duration or a negative token count")
    return s


@dataclass(frozen=True, slots=True)
class LinearStep:
    """duration = base + a*prefill + s*prefill_sq + b*decode + c*kv_read, every coefficient >= 0 (least squares;
    a relative-error fit was tried and was no better on held-out iterations here)."""

    base_s: float
    per_prefill_s: float
    per_prefill_sq_s: float
    per_decode_s: float
    per_kv_s: float

    def step_s(self, prefill_tokens: int, prefill_sq: float, decode_reqs: int, kv_tokens: int) -> float:
        return (
            self.base_s
            + self.per_prefill_s * prefill_tokens
            + self.per_prefill_sq_s * prefill_sq
            + self.per_decode_s * decode_reqs
            + self.per_kv_s * kv_tokens
        )

    def decode_run_s(self, decode_reqs: int, kv_tokens: int, steps: int) -> FloatArray:
        kv = kv_tokens + decode_reqs * np.arange(steps, dtype=np.float64)
        out: FloatArray = self.base_s + self.per_decode_s * decode_reqs + self.per_kv_s * kv
        return out


@dataclass(slots=True)
class ProfileCost:
    """Step cost fitted to measured batch records. A profile describes one model on one device, so every
    simulated model uses the same fit; activation keeps the roofline's weight-loading model. `mape` is the
    fit's mean absolute percentage error on its own rows."""

    step: LinearStep
    rows: int
    mape: float
    name: str = "profile"

    def for_model(self, model: ModelSpec, device: DeviceSpec) -> StepCost:
        return self.step

    def activation_s(self, model: ModelSpec, device: DeviceSpec) -> float:
        return RooflineCost().activation_s(model, device)


def fit_profile(samples: StepSamples, source: str = "profile") -> ProfileCost:
    if len(samples) < MIN_ROWS:
        raise UsageError(f"{source} has {len(samples)} batch records; at least {MIN_ROWS} are needed for a fit")
    if len(samples.models) > 1:
        raise UsageError(
            f"{source} holds records of {len(samples.models)} models ({', '.join(samples.models)}); "
            "a profile describes one model on one device: keep one model's records"
        )
    coef = _nonnegative_lstsq(samples.features(), samples.duration_s)
    step = LinearStep(*(float(c) for c in coef))
    return ProfileCost(step=step, rows=len(samples), mape=errors(predict(step, samples), samples.duration_s)["mape"])


def load_profile(path: Path) -> ProfileCost:
    """Fit a `ProfileCost` to the batch records in `path` (JSONL or CSV, see `read_records`)."""
    return fit_profile(read_records(path), f"profile {path}")


def predict(step: StepCost, samples: StepSamples) -> FloatArray:
    """The cost model's duration for each measured iteration's workload."""
    rows = zip(samples.prefill, samples.prefill_sq, samples.decode, samples.kv_read, strict=True)
    return np.asarray([step.step_s(int(p), float(sq), int(d), int(kv)) for p, sq, d, kv in rows], dtype=np.float64)


def errors(predicted: FloatArray, measured: FloatArray) -> dict[str, float]:
    """Absolute percentage error of predictions: mean, median, the fraction within 25%, and the median ratio of
    predicted to measured (below 1: the model is optimistic)."""
    ape = np.abs(predicted - measured) / measured
    return {
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_25pct": float((ape <= 0.25).mean()),
        "median_ratio": float(np.median(predicted / measured)),
        "iterations": float(len(ape)),
    }


def _nonnegative_lstsq(x: FloatArray, y: FloatArray) -> FloatArray:
    """Least squares with every coefficient >= 0: drop the most negative column and refit until none is."""
    keep = list(range(x.shape[1]))
    while True:
        sol, *_ = np.linalg.lstsq(x[:, keep], y, rcond=None)
        if (sol >= 0).all():
            coef = np.zeros(x.shape[1])
            coef[keep] = sol
            return coef
        del keep[int(np.argmin(sol))]
