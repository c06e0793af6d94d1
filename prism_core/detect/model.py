"""The workload-conditioned latency model: fit (LightGBM), calibrate the control chart, save and load.

The model predicts log(duration in us): batch latencies span three orders of magnitude, and a log target makes
the trees minimise relative error, which is what the control chart measures (docs/detect.md, "Target"). The trees
fit what a linear base of physical terms leaves (docs/detect.md, "Base"): the base carries batches larger than
any seen in training, where trees alone would predict the largest seen.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from prism_core.detect.features import FEATURE_NAMES, FEATURE_SPEC, base_terms, record_features, table_features
from prism_core.detect.table import DECODE, PREFILL, WorkloadTable
from prism_core.detect.trees import TreeEnsemble
from prism_core.errors import UsageError
from prism_core.models import BatchRecord, Frozen

FILE_FORMAT = "prism.latency_model"
SCHEMA_VERSION = 2  # 2: the linear base
MIN_DURATION_US = 100.0  # shorter "iterations" are bookkeeping, not batches (LatencyPrism drops them too)
IQR_MULTIPLIER = 3.0
MAX_WINDOW = 100  # window statistics are stored for W = 1..MAX_WINDOW
CALIBRATION_FOLDS = 5
MIN_ROWS = 50

# Shallow trees generalise to unseen workloads best on LatencyPrism's vLLM sweep (docs/detect.md, "Model").
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.1,
    "max_depth": 4,
    "num_leaves": 15,
    "min_child_samples": 20,
}

Floats = npt.NDArray[np.float64]


class Calibration(Frozen):
    """Mean and standard deviation of out-of-fold positive relative errors: point, and rolling mean over W."""

    split: str
    folds: int
    point: tuple[float, float]
    window: dict[str, tuple[float, float]]


class TrainingInfo(Frozen):
    rows: int
    dropped: int
    source: str
    created_ns: int
    params: dict[str, Any]


class ModelFile(Frozen):
    """The on-disk model: plain JSON, schema-versioned."""

    format: str
    schema_version: int
    feature_spec: str
    feature_names: list[str]
    target: str
    base: list[float]
    trees: dict[str, Any]
    calibration: Calibration
    training: TrainingInfo


def clean_mask(t: WorkloadTable) -> npt.NDArray[np.bool_]:
    """Rows fit for training: long enough, and not a gross outlier within their workload group (IQR rule)."""
    keep = t.duration_us > MIN_DURATION_US
    keys = np.column_stack([t.mode, t.batch_size, t.avg_input, t.max_input])
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    for idx in np.split(order, bounds):
        if len(idx) < 4:
            continue
        q1, q3 = np.percentile(t.duration_us[idx], [25, 75])
        spread = IQR_MULTIPLIER * (q3 - q1)
        d = t.duration_us[idx]
        keep[idx[(d < q1 - spread) | (d > q3 + spread)]] = False
    return keep


def positive_error(y: Floats, y_hat: Floats) -> Floats:
    """LatencyPrism's E = max(0, (y - y_hat) / y): only slower than predicted counts."""
    return np.maximum(0.0, (y - y_hat) / y)


def rolling_mean(e: Floats, groups: npt.NDArray[np.str_], w: int) -> Floats:
    """Mean of the last `w` values within each contiguous group (a window never spans two workloads)."""
    i = np.arange(len(e))
    new_group = np.r_[True, groups[1:] != groups[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, i, 0))
    start = np.maximum(group_start, i - w + 1)
    c = np.r_[0.0, np.cumsum(e)]
    out: Floats = (c[i + 1] - c[start]) / (i + 1 - start)
    return out


def _fit_base(x: Floats, y: Floats) -> Floats:
    """Non-negative coefficients of `base_terms` minimising squared relative error (each row weighted 1/y)."""
    try:
        from scipy.optimize import nnls  # type: ignore[import-untyped]
    except ImportError as exc:
        raise UsageError(f"fitting needs SciPy: pip install 'prism-xpu[detect]' ({exc})") from None
    coef, _ = nnls(base_terms(x) / y[:, None], np.ones(len(y)))
    return np.asarray(coef, dtype=np.float64)


def _log_base(x: Floats, coef: Floats) -> Floats:
    """log of the base prediction; floored at 1 us so a row with no term set (all-zero coefficients) adds 0."""
    return np.log(np.maximum(base_terms(x) @ coef, 1.0))


def _fit(x: Floats, y: Floats, params: dict[str, Any], seed: int) -> tuple[Floats, TreeEnsemble]:
    """The base, then trees on the log of what it leaves."""
    coef = _fit_base(x, y)
    return coef, _fit_trees(x, np.log(y) - _log_base(x, coef), params, seed)


def _fit_trees(x: Floats, y_log: Floats, params: dict[str, Any], seed: int) -> TreeEnsemble:
    try:
        import lightgbm
    except ImportError as exc:
        raise UsageError(f"fitting needs LightGBM: pip install 'prism-xpu[detect]' ({exc})") from None
    # The native API, not LGBMRegressor: that wrapper needs scikit-learn, and gives the same trees.
    # One thread: OpenMP threads thrash when the engine shares the cores (2 threads took 10x longer here).
    native = {k: v for k, v in params.items() if k != "n_estimators"}
    native.update(objective="regression", seed=seed, deterministic=True, num_threads=1, verbose=-1)
    booster = lightgbm.train(native, lightgbm.Dataset(x, label=y_log), num_boost_round=params["n_estimators"])
    return TreeEnsemble.from_lightgbm(booster.dump_model())


def _folds(t: WorkloadTable, k: int, seed: int) -> tuple[str, npt.NDArray[np.int64]]:
    """Fold of each row: whole groups when there are enough (unseen-workload error), else random rows."""
    rng = np.random.default_rng(seed)
    groups = np.unique(t.group)
    if len(groups) >= 2 * k:
        fold_of = dict(zip(rng.permutation(groups), np.arange(len(groups)) % k, strict=True))
        return "group", np.array([fold_of[g] for g in t.group], dtype=np.int64)
    return "random", rng.permutation(len(t)) % k


@dataclass(slots=True)
class LatencyModel:
    """Predicts a batch's duration from its workload; carries the calibration of its control chart."""

    base: Floats
    trees: TreeEnsemble
    calibration: Calibration
    training: TrainingInfo

    @classmethod
    def fit(
        cls, t: WorkloadTable, *, params: dict[str, Any] | None = None, seed: int = 0, calibrate: bool = True
    ) -> LatencyModel:
        """Fit on the clean rows of `t`; with `calibrate`, learn chart statistics from out-of-fold errors."""
        p = {**DEFAULT_PARAMS, **(params or {})}
        keep = clean_mask(t)
        if int(keep.sum()) < MIN_ROWS:
            raise UsageError(f"{t.source or 'the records'}: {int(keep.sum())} usable rows, need at least {MIN_ROWS}")
        clean = t.take(keep)
        x, y = table_features(clean), clean.duration_us
        base, trees = _fit(x, y, p, seed)
        calibration = Calibration(split="none", folds=0, point=(0.0, 0.0), window={})
        if calibrate:
            split, fold = _folds(clean, CALIBRATION_FOLDS, seed)
            oof = np.empty(len(clean))
            for k in range(CALIBRATION_FOLDS):
                test = fold == k
                coef, fold_trees = _fit(x[~test], y[~test], p, seed)
                oof[test] = fold_trees.predict(x[test]) + _log_base(x[test], coef)
            calibration = calibrate_errors(positive_error(y, np.exp(oof)), clean.group, split, CALIBRATION_FOLDS)
        info = TrainingInfo(
            rows=len(clean), dropped=int((~keep).sum()), source=t.source, created_ns=time.time_ns(), params=p
        )
        return cls(base, trees, calibration, info)

    def predict_us(self, t: WorkloadTable) -> Floats:
        x = table_features(t)
        return np.exp(self.trees.predict(x) + _log_base(x, self.base))

    def predict_record_us(self, r: BatchRecord) -> float:
        """The online path: one record, no table. The base's terms in plain floats: numpy's per-call overhead on
        a one-row matrix cost ~10 us, as much as all 200 trees."""
        x = record_features(r)
        coef: list[float] = self.base.tolist()
        dec, pre, b, dkv, ptok, pattn = coef
        mode = int(x[5])
        fixed = (dec if mode != PREFILL else 0.0) + (pre if mode != DECODE else 0.0)
        base = fixed + b * float(x[0]) + dkv * float(x[2]) + ptok * float(x[3]) + pattn * float(x[4])
        return float(np.exp(self.trees.predict_one(x))) * max(base, 1.0)

    def window_stats(self, w: int) -> tuple[float, float]:
        if w == 1:
            return self.calibration.point
        stats = self.calibration.window.get(str(w))
        if stats is None:
            raise UsageError(f"window {w} is not calibrated in this model (1..{MAX_WINDOW})")
        return stats

    # Files ----------------------------------------------------------------------------------------------

    def to_file(self) -> ModelFile:
        return ModelFile(
            format=FILE_FORMAT,
            schema_version=SCHEMA_VERSION,
            feature_spec=FEATURE_SPEC,
            feature_names=list(FEATURE_NAMES),
            target="log_duration_us_over_base",
            base=self.base.tolist(),
            trees=self.trees.to_dict(),
            calibration=self.calibration,
            training=self.training,
        )

    def save(self, path: str | Path) -> None:
        """Write atomically: a temp file in the same folder, then rename (never a half-written model)."""
        write_atomic(Path(path), self.to_file().model_dump_json())

    @classmethod
    def load(cls, path: str | Path) -> LatencyModel:
        p = Path(path)
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"model file {p} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{p} is not a Prism model file ({type(exc).__name__})") from None
        if not isinstance(raw, dict) or raw.get("format") != FILE_FORMAT:
            raise UsageError(f"{p} is not a Prism latency model (no format {FILE_FORMAT!r})")
        if raw.get("schema_version") != SCHEMA_VERSION or raw.get("feature_spec") != FEATURE_SPEC:
            raise UsageError(
                f"{p} is model schema {raw.get('schema_version')!r} / features {raw.get('feature_spec')!r}; this "
                f"Prism reads schema {SCHEMA_VERSION} / {FEATURE_SPEC}: refit it with `prism detect fit`"
            )
        try:
            f = ModelFile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(f"{p}: bad model file ({'.'.join(map(str, first['loc']))}: {first['msg']})") from None
        if f.feature_names != list(FEATURE_NAMES):
            raise UsageError(f"{p}: feature names {f.feature_names} differ from this Prism's {list(FEATURE_NAMES)}")
        if len(f.base) != base_terms(np.zeros((1, len(FEATURE_NAMES)))).shape[1]:
            raise UsageError(f"{p}: the linear base has {len(f.base)} coefficients, this Prism's has a different count")
        trees = TreeEnsemble.from_dict(f.trees, str(p))
        return cls(np.asarray(f.base, dtype=np.float64), trees, f.calibration, f.training)


def calibrate_errors(e: Floats, groups: npt.NDArray[np.str_], split: str, folds: int) -> Calibration:
    """Chart statistics from errors in stream order: the point errors, and their rolling means for each W."""
    window = {}
    for w in range(2, MAX_WINDOW + 1):
        m = rolling_mean(e, groups, w)
        window[str(w)] = (float(m.mean()), float(m.std()))
    return Calibration(split=split, folds=folds, point=(float(e.mean()), float(e.std())), window=window)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (temp file in the same folder, fsync, rename)."""
    if not path.parent.is_dir():
        raise UsageError(f"folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
