"""Diagnosis's ranking rules: on a CPU device each stage splits into its on-CPU and off-CPU parts (on an
accelerator it does not), a share that fell does not score, and only a resource that moved towards pressure is
named.

The records are built here so that what moved is known exactly; test_diagnose_real.py covers a real fault."""

from __future__ import annotations

import numpy as np

from prism_core.diagnose import diagnose, evidence_of
from prism_core.diagnose.rank import NO_RESOURCE_MOVED, OFF_CPU, ON_CPU
from prism_core.models import BatchRecord, StageTiming, TelemetrySample

MS = 1_000_000


def _batches(
    device: str, forward_on_ms: float, forward_off_ms: float, seed: int, n: int = 60, sample_off_ms: float = 0.0
) -> list[BatchRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        on = int(forward_on_ms * MS * rng.uniform(0.95, 1.05))
        off = int(forward_off_ms * MS * rng.uniform(0.9, 1.1))
        sample = int(0.5 * MS * rng.uniform(0.95, 1.05))
        sample_off = int(sample_off_ms * MS * rng.uniform(0.9, 1.1))
        stages = {
            "forward": StageTiming(wall_ns=on + off, device_ns=on),
            "sample": StageTiming(wall_ns=sample + sample_off, device_ns=sample),
        }
        out.append(
            BatchRecord(
                start_ns=i * 20 * MS,
                duration_ns=on + off + sample + sample_off,
                mode="decode",
                batch_size=4,
                model="m",
                engine="e",
                device=device,
                pid=1,
                stages=stages,
            )
        )
    return out


def _telemetry(n: int = 20, **values: float) -> list[TelemetrySample]:
    # Batches are 20 ms apart from t = 0, 60 of them: samples every 60 ms cover them. A little spread, so that z
    # has a normal standard deviation to measure against.
    values = values or {"prism.cpu.run_queue": 2.0}
    return [
        TelemetrySample(
            ts_ns=i * 60 * MS, device="cpu:0", values={k: v * (1 + 0.01 * (i % 3)) for k, v in values.items()}
        )
        for i in range(n)
    ]


def test_waiting_for_a_core_blames_the_off_cpu_part() -> None:
    normal = _batches("cpu:0", 8.0, 0.2, seed=1)
    abnormal = _batches("cpu:0", 8.0, 8.0, seed=2)
    top = diagnose(evidence_of(normal, _telemetry()), evidence_of(abnormal, _telemetry())).suspects[0]
    assert (top.stage, top.part, top.where) == ("forward", OFF_CPU, "forward (off-cpu)")
    assert top.significant and top.stage_ms_abnormal > 10 * top.stage_ms_normal


def test_slower_execution_blames_the_on_cpu_part() -> None:
    normal = _batches("cpu:0", 8.0, 0.2, seed=1)
    abnormal = _batches("cpu:0", 16.0, 0.2, seed=2)
    suspects = diagnose(evidence_of(normal, _telemetry()), evidence_of(abnormal, _telemetry())).suspects
    assert (suspects[0].stage, suspects[0].part) == ("forward", ON_CPU)
    assert all(s.part != OFF_CPU or not s.significant for s in suspects)


def test_a_part_that_was_near_zero_does_not_outrank_the_part_that_took_the_cycle() -> None:
    # sample's off-CPU time is ~1 us in every normal batch: its share barely varies, so without a floor on the
    # share's spread a move of a few points of the cycle would score higher than forward's move of 40.
    normal = _batches("cpu:0", 8.0, 0.2, seed=1, sample_off_ms=0.001)
    abnormal = _batches("cpu:0", 8.0, 8.0, seed=2, sample_off_ms=1.0)
    suspects = diagnose(evidence_of(normal, _telemetry()), evidence_of(abnormal, _telemetry())).suspects
    assert [s.where for s in suspects[:2]] == ["forward (off-cpu)", "sample (off-cpu)"]


def test_a_part_whose_share_fell_ranks_after_the_one_that_grew() -> None:
    # forward's CPU time grows 10% but the off-CPU wait grows far more: the on-CPU share falls. LatencyPrism's
    # |delta share| would score that fall; it is the consequence of the wait, so it ranks after it.
    normal = _batches("cpu:0", 8.0, 0.2, seed=1)
    abnormal = _batches("cpu:0", 8.8, 8.0, seed=2)
    suspects = diagnose(evidence_of(normal, _telemetry()), evidence_of(abnormal, _telemetry())).suspects
    assert [s.where for s in suspects[:2]] == ["forward (off-cpu)", "forward (on-cpu)"]
    assert suspects[1].share_abnormal < suspects[1].share_normal and suspects[1].score == 0


def test_accelerator_stages_stay_whole() -> None:
    # Device time on an accelerator runs asynchronously to the host's wall time: wall - device is no part.
    normal = _batches("nvidia:0", 8.0, 0.2, seed=1)
    abnormal = _batches("nvidia:0", 8.0, 8.0, seed=2)
    suspects = diagnose(evidence_of(normal, _telemetry()), evidence_of(abnormal, _telemetry())).suspects
    assert suspects[0].stage == "forward" and all(s.part is None for s in suspects)
    assert suspects[0].where == "forward"


def test_only_a_resource_that_moved_towards_pressure_is_named() -> None:
    normal = _batches("cpu:0", 8.0, 0.2, seed=1)
    abnormal = _batches("cpu:0", 8.0, 8.0, seed=2)

    def named(before: dict[str, float], after: dict[str, float]) -> str:
        d = diagnose(evidence_of(normal, _telemetry(**before)), evidence_of(abnormal, _telemetry(**after)))
        return d.suspects[0].resource

    # A load average still falling after an earlier fault explains nothing; a run queue that grew does.
    assert named({"system.cpu.load_average.1m": 2.4}, {"system.cpu.load_average.1m": 1.2}) == NO_RESOURCE_MOVED
    assert named({"prism.cpu.run_queue": 1.0}, {"prism.cpu.run_queue": 6.0}) == "prism.cpu.run_queue"
    # A clock is pressure when it falls.
    assert named({"system.cpu.frequency": 2.6e9}, {"system.cpu.frequency": 0.8e9}) == "system.cpu.frequency"
    assert named({"system.cpu.frequency": 0.8e9}, {"system.cpu.frequency": 2.6e9}) == NO_RESOURCE_MOVED
    # Memory use up by 0.1%: measurable, not an explanation.
    assert named({"system.memory.usage": 1.0e9}, {"system.memory.usage": 1.001e9}) == NO_RESOURCE_MOVED


def test_when_no_share_moves_visibly_the_part_that_grew_most_leads() -> None:
    # forward holds ~92% of the cycle and doubles with it (as a busy host's squeeze did in `prism demo`): no share
    # moves by 2 points. sample's off-CPU time gains 1.5 points; forward gained 8 ms and must still lead.
    normal = _batches("cpu:0", 8.0, 0.2, seed=1, sample_off_ms=0.001)
    abnormal = _batches("cpu:0", 16.0, 0.4, seed=2, sample_off_ms=0.25)
    suspects = diagnose(evidence_of(normal, _telemetry()), evidence_of(abnormal, _telemetry())).suspects
    assert suspects[0].where == "forward (on-cpu)"
    assert suspects[0].stage_ms_abnormal - suspects[0].stage_ms_normal > 7
