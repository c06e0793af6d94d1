"""The process `prism attach` was pointed at: checks that it exists, is ours to read and runs Python, and finds
its descendants (vLLM and SGLang run their engine loops in child processes of the API server)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from prism_core.errors import UsageError


@dataclass(frozen=True)
class Target:
    pid: int
    exe: str
    cmdline: list[str]


def not_ours(pid: int, why: str) -> UsageError:
    return UsageError(f"process {pid} is not ours to trace ({why}): run as its user or as root")


def inspect_target(pid: int) -> Target:
    """The process, if it exists, is ours to read and runs Python; else one clear UsageError."""
    proc = Path(f"/proc/{pid}")
    if pid <= 0 or not proc.is_dir():
        raise UsageError(f"no process with id {pid}")
    try:
        exe = os.readlink(proc / "exe")
        cmdline = [a for a in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    except PermissionError as exc:
        raise not_ours(pid, exc.strerror or "permission denied") from None
    except FileNotFoundError:
        raise UsageError(f"process {pid} exited") from None
    if not _is_python(exe, cmdline):
        raise UsageError(f"process {pid} ({Path(exe).name}) is not a Python process")
    return Target(pid, exe, cmdline)


def _is_python(exe: str, cmdline: list[str]) -> bool:
    return "python" in Path(exe).name or any("python" in Path(a).name for a in cmdline[:1])


def python_descendants(pid: int) -> list[int]:
    """`pid` and every Python process below it, parents first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        try:
            exe = os.readlink(f"/proc/{p}/exe")
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if p == pid or _is_python(exe, cmdline):
            found.append(p)
        todo.extend(sorted(children.get(p, [])))
    return found


# Python children that run no engine code and sit blocked in C (multiprocessing's bookkeeping processes): an
# injected script would never run there.
HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "multiprocessing.semaphore_tracker")


def engine_candidates(pid: int) -> list[int]:
    """`python_descendants(pid)` less multiprocessing's helper processes."""
    out = []
    for p in python_descendants(pid):
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if p == pid or not any(h in cmdline for h in HELPERS):
            out.append(p)
    return out


def python_version(target: Target) -> tuple[int, int] | None:
    """The target interpreter's (major, minor), asked of its own executable; None if that cannot be run."""
    try:
        out = subprocess.run(
            [target.exe, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
