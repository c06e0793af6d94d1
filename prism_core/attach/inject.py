"""Injection into a running Python 3.14+ process with `sys.remote_exec` (PEP 768), and its undoing.

`sys.remote_exec(pid, path)` asks the target interpreter to run a script at its next safe point on the main
thread; the caller must be the same Python version, so the target's own executable makes the call. The script
(prism_core/bootstrap/remote.py) reports back through a JSON file. A process that does not run it in time (a main
thread blocked in C code) gets a cancel file, so the script does nothing when it does run: nothing is left behind.
Processes are handled parents first; if one fails, those already attached are detached again.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from prism_core.attach.target import Target, inspect_target, not_ours
from prism_core.bootstrap.remote import script
from prism_core.errors import UsageError

REMOTE_EXEC = (3, 14)
CALL = "import sys; sys.remote_exec(int(sys.argv[1]), sys.argv[2])"


def run_everywhere(pids: list[int], action: str, specs: list[str], timeout_s: float) -> list[dict[str, object]]:
    """Run `action` (attach | detach) in each process; their reports. On a failure, undo what was done, then raise."""
    done: list[tuple[Target, dict[str, object]]] = []
    try:
        for pid in pids:
            target = inspect_target(pid)
            done.append((target, run_in(target, action, specs, timeout_s)))
    except UsageError:
        if action == "attach":
            for target, _ in done:
                with contextlib.suppress(UsageError):  # exited meanwhile: nothing of ours is left in it
                    run_in(target, "detach", [], timeout_s)
        raise
    return [report for _, report in done]


def run_in(target: Target, action: str, specs: list[str], timeout_s: float) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="prism-attach-"))
    cancelled = False
    try:
        folder.chmod(0o755)  # the target may run as another user (attaching as root)
        marker = folder / "report.json"
        path = folder / "script.py"
        path.write_text(script(action, specs, str(marker)))
        path.chmod(0o644)
        proc = subprocess.run(
            [target.exe, "-c", CALL, str(target.pid), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise _refused(target.pid, proc.stderr)
        deadline = time.monotonic() + timeout_s
        while not marker.exists():
            if time.monotonic() > deadline:
                (folder / "report.json.cancel").touch()
                cancelled = True  # the script, when it runs, sees the cancel file and removes the folder
                raise UsageError(
                    f"process {target.pid} ran no Python code on its main thread for {timeout_s:g} s, so the "
                    f"{action} script did not run (it will do nothing if it runs later); an idle server waits in "
                    "C code: send it a request while attaching, or raise --timeout"
                )
            time.sleep(0.05)
        report = dict(json.loads(marker.read_text()))
    finally:
        if not cancelled:
            shutil.rmtree(folder, ignore_errors=True)
    if not report.get("ok"):
        error = str(report.get("error"))
        hint = "; install Prism in the server's own environment" if error.startswith("ModuleNotFoundError") else ""
        raise UsageError(f"{action} failed inside process {target.pid}: {error}{hint}")
    return report


def _refused(pid: int, stderr: str) -> UsageError:
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "no output")
    if "PermissionError" in last or "Operation not permitted" in last:
        return not_ours(pid, "ptrace not permitted; or allow it with kernel.yama.ptrace_scope=0 or CAP_SYS_PTRACE")
    return UsageError(f"sys.remote_exec into process {pid} failed: {last}")
