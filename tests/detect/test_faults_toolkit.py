"""The anomaly simulation toolkit: CPU faults really act and restore, the stage-delay registry, the CLI."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prism_core.faults.processes import crowd
from prism_core.faults.runner import run_fault
from prism_core.faults.stage_delay import DelayingRecorder, clear_stage_delay, stage_delays
from prism_core.faults.timeline import FaultTimeline, label_at
from prism_core.plugins import PluginHost
from prism_core.testing import RecordingRecorder
from prism_plugins.cpu.faults import GcStorm, MemoryPressure, SchedulerNoise, StageDelay

CPU_FAULTS = {
    "cpu.compute_squeeze",
    "cpu.memory_bandwidth",
    "cpu.memory_pressure",
    "cpu.scheduler_noise",
    "cpu.gc_storm",
    "cpu.stage_delay",
}


def test_cpu_plugin_contributes_every_cpu_fault(builtin_host: PluginHost) -> None:
    assert set(builtin_host.fault_injectors()) >= CPU_FAULTS


def test_affinity_shrink_restores_the_cpu_set() -> None:
    before = os.sched_getaffinity(0)
    fault = SchedulerNoise(mode="affinity")
    fault.start(1.0)
    try:
        assert len(os.sched_getaffinity(0)) == 1
    finally:
        fault.stop()
    assert os.sched_getaffinity(0) == before and not fault.active


def test_busy_processes_run_and_are_reaped() -> None:
    fault = SchedulerNoise()
    fault.start(0.5)
    procs = list(fault._procs)
    # Every usable CPU busy, plus half as many again: a neighbour that leaves a core idle barely touches the engine.
    assert len(procs) == crowd(0.5, len(os.sched_getaffinity(0))) > len(os.sched_getaffinity(0))
    assert all(p.poll() is None for p in procs)
    fault.stop()
    assert all(p.poll() is not None for p in procs) and not fault.active


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # exited; a zombie waits only for whoever adopted it to reap it


def test_workers_stop_when_the_engine_dies() -> None:
    """A fault's workers outlive a SIGKILLed engine only until they notice: no busy processes are left behind."""
    code = (
        "from prism_plugins.cpu.faults import ComputeSqueeze\n"
        "f = ComputeSqueeze()\nf.start(0.1)\nprint(*[p.pid for p in f._procs], flush=True)\n"
        "import time\ntime.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as engine:
        assert engine.stdout is not None
        workers = [int(x) for x in engine.stdout.readline().split()]
        assert workers and not any(_gone(w) for w in workers)
        engine.kill()
    deadline = time.monotonic() + 20
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(w) for w in workers)


def test_onset_is_read_before_the_fault_sets_itself_up() -> None:
    """Building a GC storm's object graph already stalls the engine: the labelled interval must include it."""

    class Timed(GcStorm):
        def prepare(self, intensity: float) -> None:
            self.prepared_ns = time.time_ns()
            super().prepare(intensity)

    fault = Timed()
    onset = fault.start(0.1)
    end = fault.stop()
    assert onset <= fault.prepared_ns < end


def test_gc_storm_restores_thresholds() -> None:
    before = gc.get_threshold()
    fault = GcStorm()
    fault.start(0.1)
    try:
        assert gc.get_threshold() != before
    finally:
        fault.stop()
    assert gc.get_threshold() == before


def test_memory_pressure_targets_a_share_of_available_memory() -> None:
    fault = MemoryPressure()
    fault.start(0.1)
    procs = list(fault._procs)
    try:
        assert int(fault.params["target_bytes"]) > 0  # type: ignore[call-overload]
        time.sleep(0.5)
        assert all(p.poll() is None for p in procs)  # holding and churning, not crashed
    finally:
        fault.stop()
    assert procs and all(p.poll() is not None for p in procs)  # the memory went with them


def test_stage_delay_lands_inside_the_stage() -> None:
    inner = RecordingRecorder()
    rec = DelayingRecorder(inner)
    fault = StageDelay(stage="forward", max_delay_s=0.04)
    fault.start(0.5)
    try:
        assert stage_delays() == {"forward": 0.02}
        rec.begin("forward")
        t0 = time.perf_counter()
        rec.end("forward")
        waited = time.perf_counter() - t0
        rec.begin("sample")
        rec.end("sample")
    finally:
        fault.stop()
    assert waited >= 0.02  # sleep never returns early: the delay is counted inside "forward"
    assert inner.calls == [("begin", "forward"), ("end", "forward"), ("begin", "sample"), ("end", "sample")]
    assert stage_delays() == {}
    clear_stage_delay()


def test_run_fault_records_ground_truth(tmp_path: Path) -> None:
    timeline = FaultTimeline(tmp_path / "faults.jsonl")
    event = run_fault(StageDelay(), 0.05, 0.2, timeline=timeline)
    (read,) = FaultTimeline.read(tmp_path / "faults.jsonl")
    assert read == event and event.end_ns > event.onset_ns
    assert label_at([event], event.onset_ns) == 1 and label_at([event], event.end_ns) == 0


def test_faults_cli(tmp_path: Path, prism_cmd: list[str]) -> None:
    listed = json.loads(
        subprocess.run([*prism_cmd, "faults", "list", "--json"], capture_output=True, check=True).stdout
    )
    assert {f["name"] for f in listed} >= CPU_FAULTS
    tl = tmp_path / "t.jsonl"
    run = [*prism_cmd, "faults", "run", "cpu.compute_squeeze", "--duration", "0.3", "--intensity", "0.5"]
    out = subprocess.run([*run, "--timeline", str(tl), "--json"], capture_output=True, text=True, check=True)
    event = json.loads(out.stdout)
    assert event["name"] == "cpu.compute_squeeze" and event["end_ns"] - event["onset_ns"] >= 300_000_000
    assert len(FaultTimeline.read(tl)) == 1


@pytest.mark.parametrize("args", [["--intensity", "0"], ["--intensity", "1.5"], ["--duration", "-1"]])
def test_faults_cli_bad_values_exit_2(prism_cmd: list[str], args: list[str]) -> None:
    r = subprocess.run([*prism_cmd, "faults", "run", "cpu.gc_storm", *args], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_unknown_fault_exit_2(prism_cmd: list[str]) -> None:
    r = subprocess.run([*prism_cmd, "faults", "run", "cpu.nope"], capture_output=True, text=True)
    assert r.returncode == 2 and "cpu.compute_squeeze" in r.stderr
