"""`prism simulate --validate-cpu`: how far the simulator's per-iteration cost is from a real engine here.

It runs the tiny random Llama under `prism run --export jsonl:` (sweep.py) over a grid of batch sizes and prompt
lengths, then compares each measured iteration with (a) the roofline the simulator uses by default, given this
host as a device spec measured in the same run (and, beside it, the catalogue's `cpu-1core`, the same host
measured once), and (b) a profile fitted to other iterations. Held-out
iterations are whole grid points in a checkerboard (batch index + prompt index odd), so the profile is scored
on workloads it never saw. `repeatability` is the error of predicting each held-out decode step by the median
of its own grid point's decode steps: the noise floor no cost model of the workload alone can beat.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prism_core.errors import UsageError
from prism_core.schedule.catalogue import BUILTIN, DeviceSpec, ModelSpec
from prism_core.schedule.cost import RooflineCost
from prism_core.schedule.profile import StepSamples, errors, fit_profile, predict, read_records

SWEEP = "prism_core.schedule.validation.sweep"
MIN_PROMPT = 4  # the sweep warms up on a 3-token prompt; the grid must not contain it
CATALOGUE_DEVICE = "cpu-1core"  # the same host, measured once when quiet (catalogue.py)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_sweep(
    records: Path, batches: Sequence[int], inputs: Sequence[int], new_tokens: int, timeout_s: float = 900.0
) -> dict[str, Any]:
    """Run the engine under `prism run` (a real child process); returns the sweep's JSON line."""
    grid = ["--batches", ",".join(map(str, batches)), "--inputs", ",".join(map(str, inputs))]
    cmd = [sys.executable, "-m", "prism_core", "run", "--export", f"jsonl:{records}", "--"]
    cmd += [sys.executable, "-m", SWEEP, *grid, "--new-tokens", str(new_tokens)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout_s, env={**os.environ, **ONE_THREAD}, check=False
    )
    if done.returncode != 0:
        raise UsageError(f"the CPU engine run failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _check_grid(batches: Sequence[int], inputs: Sequence[int], new_tokens: int) -> None:
    if not batches or not inputs or min(batches) < 1 or min(inputs) < MIN_PROMPT or new_tokens < 2:
        raise UsageError(
            f"validation grid: batches >= 1, prompt lengths >= {MIN_PROMPT}, new tokens >= 2 "
            f"(got {list(batches)}, {list(inputs)}, {new_tokens})"
        )
    if len(batches) * len(inputs) < 2:
        raise UsageError("validation grid needs at least 2 (batch, prompt) points: one to fit, one to hold out")


def _by_mode(step: Any, test: StepSamples) -> dict[str, dict[str, float]]:
    pred = predict(step, test)
    out = {"all": errors(pred, test.duration_s)}
    for mode, mask in (("prefill", test.prefill > 0), ("decode", test.prefill == 0)):
        if mask.any():
            out[mode] = errors(pred[mask], test.duration_s[mask])
    return out


def _repeatability(test: StepSamples) -> dict[str, float]:
    decode = test.select(test.prefill == 0)
    pred = np.empty(len(decode))
    for b, n in set(zip(decode.batch.tolist(), decode.input_len.tolist(), strict=True)):
        mask = (decode.batch == b) & (decode.input_len == n)
        pred[mask] = np.median(decode.duration_s[mask])
    return errors(pred, decode.duration_s)


def evaluate(
    samples: StepSamples, model: ModelSpec, device: DeviceSpec, batches: Sequence[int], inputs: Sequence[int]
) -> dict[str, Any]:
    """Score the roofline and a fitted profile on the held-out grid points of `samples`."""
    bi = {b: i for i, b in enumerate(batches)}
    ii = {n: i for i, n in enumerate(inputs)}
    on_grid = np.array([b in bi and n in ii for b, n in zip(samples.batch, samples.input_len, strict=True)])
    s = samples.select(on_grid)
    held = np.array([(bi[int(b)] + ii[int(n)]) % 2 == 1 for b, n in zip(s.batch, s.input_len, strict=True)])
    train, test = s.select(~held), s.select(held)
    if not len(test) or not len(train):
        raise UsageError("the engine produced no iterations on one side of the held-out split; widen the grid")
    profile = fit_profile(train, "the validation's training iterations")
    roofline = RooflineCost()
    catalogued = BUILTIN.device(CATALOGUE_DEVICE)
    return {
        "iterations": {"train": len(train), "held_out": len(test)},
        "roofline": {
            "assumptions": {
                "bandwidth_efficiency": roofline.bandwidth_efficiency,
                "compute_efficiency": roofline.compute_efficiency,
                "overhead_s": roofline.overhead_s,
            },
            "error": _by_mode(roofline.for_model(model, device), test),
        },
        f"roofline_{CATALOGUE_DEVICE}": {
            "device": catalogued.model_dump(),
            "error": _by_mode(roofline.for_model(model, catalogued), test),
        },
        "profile": {
            "coefficients": dataclasses.asdict(profile.step),
            "fit_mape": profile.mape,
            "error": _by_mode(profile.step, test),
        },
        "repeatability": _repeatability(test),
        "measured_median_ms": {
            mode: float(np.median(test.duration_s[mask]) * 1e3)
            for mode, mask in (("prefill", test.prefill > 0), ("decode", test.prefill == 0))
            if mask.any()
        },
    }


def validate_cpu(
    batches: Sequence[int] = (1, 2, 4, 8, 16),
    inputs: Sequence[int] = (16, 64, 128, 256, 512),
    new_tokens: int = 8,
    records: Path | None = None,
) -> dict[str, Any]:
    """Run the tiny model on this CPU over the grid and report the cost models' per-iteration error."""
    _check_grid(batches, inputs, new_tokens)
    with tempfile.TemporaryDirectory(prefix="prism-validate-") as tmp:
        path = records or Path(tmp) / "records.jsonl"
        path.unlink(missing_ok=True)
        info = run_sweep(path, batches, inputs, new_tokens)
        samples = read_records(path)
    device = DeviceSpec.model_validate(info["device"])
    model = ModelSpec(name=info["name"], **info["model"])
    report = evaluate(samples, model, device, batches, inputs)
    grid = {"batches": list(batches), "prompt_lengths": list(inputs), "new_tokens": new_tokens}
    return {"device": device.model_dump(), "model": model.model_dump(exclude_none=True), "grid": grid, **report}
