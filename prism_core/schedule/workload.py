"""Workloads for the simulator, built from real request traces.

The traces are Azure's LLM inference traces of 2023-11-16 (a coding and a conversation service), published
with "Splitwise: Efficient generative LLM inference using phase splitting" (Patel et al., ISCA 2024) in
Azure/AzurePublicDataset under CC-BY 4.0. They give real arrival times and prompt/output lengths; they do not
say which model served a request, so `build_workload` spreads requests over N models with a long-tail
(Zipf-like) popularity and bursty on/off activity, both seeded: the two patterns the Prism paper reports in
production multi-model traffic.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from prism_core.errors import UsageError
from prism_core.settings import data_dir

TraceName = Literal["conv", "code", "both"]
TRACE_FILES = {"code": "azure_llm_2023_code.csv", "conv": "azure_llm_2023_conv.csv"}

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Trace:
    """One trace: arrival offsets from its first request (seconds, sorted), prompt and output lengths."""

    arrival_s: FloatArray
    prompt: IntArray
    output: IntArray

    @property
    def span_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self.arrival_s) else 0.0


def load_trace(path: Path) -> Trace:
    """Read a trace CSV (TIMESTAMP, ContextTokens, GeneratedTokens); an empty or malformed file is a UsageError."""
    return _load_trace(path.resolve())


@functools.lru_cache(maxsize=8)
def _load_trace(path: Path) -> Trace:
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise UsageError(f"trace {path} is empty; expected columns TIMESTAMP,ContextTokens,GeneratedTokens")
            want = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
            if [h.strip() for h in header[:3]] != want:
                raise UsageError(f"trace {path} header is {header[:3]}; expected {want}")
            stamps: list[float] = []
            prompt: list[int] = []
            output: list[int] = []
            for line, row in enumerate(reader, start=2):
                try:
                    stamps.append(datetime.fromisoformat(row[0]).timestamp())
                    prompt.append(int(row[1]))
                    output.append(int(row[2]))
                except (ValueError, IndexError) as exc:
                    raise UsageError(f"trace {path} line {line} is malformed ({row!r}): {exc}") from exc
    except OSError as exc:
        raise UsageError(f"cannot read trace {path}: {exc.strerror} (set PRISM_DATA_DIR to the data folder)") from exc
    if not stamps:
        raise UsageError(f"trace {path} has no requests")
    t = np.asarray(stamps)
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order[0]]
    p = np.maximum(np.asarray(prompt, dtype=np.int64)[order], 1)
    o = np.maximum(np.asarray(output, dtype=np.int64)[order], 1)
    return Trace(arrival_s=t, prompt=p, output=o)


def trace(name: TraceName, folder: Path | None = None) -> Trace:
    """The named trace ('both' merges code and conv on a common start)."""
    base = folder or data_dir()
    names = ["code", "conv"] if name == "both" else [name]
    parts = [load_trace(base / TRACE_FILES[n]) for n in names]
    if len(parts) == 1:
        return parts[0]
    t = np.concatenate([p.arrival_s for p in parts])
    order = np.argsort(t, kind="stable")
    return Trace(
        arrival_s=t[order],
        prompt=np.concatenate([p.prompt for p in parts])[order],
        output=np.concatenate([p.output for p in parts])[order],
    )


@dataclass(frozen=True, slots=True)
class Workload:
    """Requests for the simulator, sorted by arrival, each with the index of the model it is for."""

    arrival_s: FloatArray
    prompt: IntArray
    output: IntArray
    model: IntArray
    n_models: int
    duration_s: float

    def __len__(self) -> int:
        return len(self.arrival_s)

    def rates(self, start_s: float = 0.0, end_s: float | None = None) -> FloatArray:
        """Requests per second of each model over [start_s, end_s)."""
        end = self.duration_s if end_s is None else end_s
        lo, hi = np.searchsorted(self.arrival_s, [start_s, end], side="left")
        counts = np.bincount(self.model[lo:hi], minlength=self.n_models).astype(np.float64)
        out: FloatArray = counts / max(end - start_s, 1e-9)
        return out


@dataclass(frozen=True, slots=True)
class Burstiness:
    """Long-tail popularity (Zipf exponent) and on/off activity (exponential period means, seconds)."""

    zipf: float = 1.0
    on_mean_s: float = 300.0
    off_mean_s: float = 300.0
    always_on: int = 1  # the most popular models are never idle, as production's head models are not


def build_workload(
    source: Trace,
    n_models: int,
    duration_s: float,
    rate_scale: float = 1.0,
    seed: int = 0,
    burst: Burstiness | None = None,
) -> Workload:
    """Replay `source` at `rate_scale` times its rate for `duration_s`, spreading requests over `n_models`.

    Faster replay compresses the trace's time axis; when that needs more than the trace holds, the trace is
    tiled end to end. Each request goes to one of the models active at its arrival, chosen by popularity.
    """
    if n_models < 1:
        raise UsageError(f"--models must be >= 1 (got {n_models})")
    if duration_s <= 0 or rate_scale <= 0:
        raise UsageError(f"duration and rate scale must be > 0 (got {duration_s}, {rate_scale})")
    b = burst or Burstiness()
    gap = float(np.median(np.diff(source.arrival_s))) if len(source.arrival_s) > 1 else 1.0
    span = source.span_s + gap  # the next copy starts one typical gap after the last request
    copies = int(np.ceil(duration_s * rate_scale / span))
    t = np.concatenate([source.arrival_s + i * span for i in range(copies)]) / rate_scale
    keep = t < duration_s
    n = int(keep.sum())
    t = t[keep]
    prompt = np.tile(source.prompt, copies)[:n]
    output = np.tile(source.output, copies)[:n]

    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_models + 1, dtype=np.float64) ** b.zipf
    active = _activity(rng, n_models, duration_s, b)
    model = np.empty(n, dtype=np.int64)
    bins = np.minimum(t.astype(np.int64), active.shape[1] - 1)
    starts = np.searchsorted(bins, np.arange(active.shape[1] + 1))
    u = rng.random(n)
    for s in range(active.shape[1]):
        lo, hi = starts[s], starts[s + 1]
        if lo == hi:
            continue
        cdf = np.cumsum(popularity * active[:, s])
        model[lo:hi] = np.searchsorted(cdf, u[lo:hi] * cdf[-1], side="right")
    return Workload(
        arrival_s=t, prompt=prompt, output=output, model=model, n_models=n_models, duration_s=float(duration_s)
    )


def _activity(rng: np.random.Generator, n_models: int, duration_s: float, b: Burstiness) -> npt.NDArray[np.bool_]:
    """Per model and per second: is the model in an 'on' period. Starts in a random phase."""
    seconds = int(np.ceil(duration_s))
    active = np.zeros((n_models, seconds), dtype=bool)
    for m in range(n_models):
        if m < b.always_on:
            active[m] = True
            continue
        on = rng.random() < b.on_mean_s / (b.on_mean_s + b.off_mean_s)
        t = 0.0
        while t < seconds:
            length = rng.exponential(b.on_mean_s if on else b.off_mean_s)
            if on:
                active[m, int(t) : int(np.ceil(t + length))] = True
            t += length
            on = not on
    # A second with every model off would drop its requests; give it to the always-on head instead.
    idle = ~active.any(axis=0)
    active[0, idle] = True
    return active
