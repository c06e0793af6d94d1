"""Stage shares from outside the process: py-spy samples the target's Python stacks, and each sample is put in the
stage of its innermost frame that a framework adapter names (`FrameworkAdapter.sampled_stages`).

py-spy runs without pausing the target (`--nonblocking`), so the engine never waits for the sampler; the cost is
an occasional torn stack, which lands outside any stage. A thread is an engine thread when at least one of its
samples falls in a stage. What sampling cannot give: per-batch timings (an iteration of a few milliseconds holds
no sample or one), the workload of each batch, and request records. Shares are over an interval, which is the
mean per-iteration share weighted by iteration length.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prism_core.attach.target import not_ours
from prism_core.errors import UsageError

DEFAULT_RATE_HZ = 100


@dataclass
class EngineThread:
    pid: int
    tid: int
    name: str  # the thread's name
    command: str
    samples: int = 0  # every sample of this thread in the interval, idle ones included
    stages: Counter[str] = field(default_factory=Counter)  # samples whose innermost named frame is that stage

    @property
    def busy(self) -> float:
        """Share of the interval this thread spent inside a named stage (the rest: waiting, or the loop itself)."""
        return sum(self.stages.values()) / self.samples if self.samples else 0.0

    def shares(self) -> dict[str, float]:
        """Each stage's share of the thread's in-stage samples: the iteration's breakdown."""
        total = sum(self.stages.values())
        return {s: round(n / total, 4) for s, n in self.stages.most_common()} if total else {}

    def to_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "tid": self.tid,
            "thread": self.name,
            "command": self.command,
            "samples": self.samples,
            "busy": round(self.busy, 4),
            "shares": self.shares(),
        }


def sampler() -> str | None:
    """The py-spy executable: beside this interpreter (Prism's own environment) or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() else shutil.which("py-spy")


def sample(pid: int, seconds: float, stages: Mapping[str, str], rate_hz: int = DEFAULT_RATE_HZ) -> list[EngineThread]:
    """Sample `pid` and its subprocesses for `seconds`; the engine threads found, busiest first."""
    exe = sampler()
    if exe is None:
        raise UsageError("stack sampling needs py-spy: pip install 'prism-xpu[attach]'")
    with tempfile.TemporaryDirectory(prefix="prism-attach-") as tmp:
        out = Path(tmp) / "stacks.txt"
        command = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate_hz)]
        command += ["--format", "raw", "--output", str(out), "--nonblocking", "--idle", "--threads", "--function"]
        command += ["--subprocesses"]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
        if proc.returncode != 0 or not out.is_file():
            raise _error(pid, proc.stderr)
        return engine_threads(out.read_text(), stages)


def _error(pid: int, stderr: str) -> UsageError:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    first = next((ln for ln in lines if ln.startswith(("Error:", "Permission"))), lines[0] if lines else "no output")
    if "ermission" in first:
        return not_ours(pid, "ptrace not permitted; or allow it with kernel.yama.ptrace_scope=0 or CAP_SYS_PTRACE")
    return UsageError(f"py-spy could not sample process {pid}: {first.removeprefix('Error:').strip()}")


def engine_threads(raw: str, stages: Mapping[str, str]) -> list[EngineThread]:
    """Parse py-spy's raw output (`frame;frame;... count` per distinct stack, outermost first)."""
    threads: dict[tuple[int, int], EngineThread] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        pid, command, tid, name, functions = 0, "", 0, "", []
        for frame in stack.split(";"):
            if frame.startswith("process "):
                head, _, rest = frame[len("process ") :].partition(":")
                pid, command = int(head), rest.strip('"')
            elif frame.startswith("thread ("):  # `thread (TID)`, then `: NAME` where the thread has one
                head, _, rest = frame[len("thread (") :].partition(")")
                tid, name = int(head, 0), rest.removeprefix(": ")
            else:
                functions.append(frame.rsplit(" (", 1)[0])
        t = threads.setdefault((pid, tid), EngineThread(pid, tid, name, command))
        t.samples += int(count)
        stage = next((stages[f] for f in reversed(functions) if f in stages), None)
        if stage is not None:
            t.stages[stage] += int(count)
    found = [t for t in threads.values() if t.stages]
    return sorted(found, key=lambda t: -sum(t.stages.values()))
