"""Injection: the scripts `prism attach` hands to `sys.remote_exec`, run in a real engine process; and the
`sys.remote_exec` call itself where a Python 3.14+ interpreter exists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prism_core.bootstrap.remote import script
from prism_core.testing.enable import environ_without_prism

pytest.importorskip("transformers")
ROOT = Path(__file__).resolve().parents[2]
PRISM = Path(sys.executable).parent / "prism"
PROGRAMS = Path(__file__).parent / "programs"


class Engine:
    def __init__(self) -> None:
        command = [sys.executable, str(PROGRAMS / "engine_with_exec.py")]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.ask() == "READY"

    def ask(self, command: str | None = None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def run_script(self, folder: Path, action: str, specs: list[str]) -> dict[str, object]:
        marker = folder / f"{action}.json"
        path = folder / f"{action}.py"
        path.write_text(script(action, specs, str(marker)))
        assert self.ask(f"EXEC {path}") == "OK"
        return dict(json.loads(marker.read_text()))


@pytest.fixture
def engine() -> Iterator[Engine]:
    e = Engine()
    with e.proc:  # closes its pipes
        yield e
        e.proc.kill()


def test_attach_script_instruments_a_running_engine_and_detach_restores_it(engine: Engine, tmp_path: Path) -> None:
    jsonl = tmp_path / "batches.jsonl"
    assert engine.ask("PATCHED") == "False"
    attached = engine.run_script(tmp_path, "attach", [f"jsonl:{jsonl}"])
    assert attached["ok"] is True and attached["installed"] == ["transformers"]
    assert attached["pid"] == engine.proc.pid
    assert engine.ask("PATCHED") == "True"
    time.sleep(1.5)  # requests arrive every 50 ms: iterations run under capture
    detached = engine.run_script(tmp_path, "detach", [])
    assert detached == {**detached, "ok": True, "installed": ["transformers"]}
    assert engine.ask("PATCHED") == "False"  # every patched attribute is back
    batches = [json.loads(line) for line in jsonl.read_text().splitlines()]  # detach closed (flushed) the exporter
    assert batches and all(b["pid"] == engine.proc.pid for b in batches if b["kind"] == "batch")
    assert any(b["kind"] == "batch" and "forward" in b["stages"] for b in batches)
    # Attaching again after a detach starts a fresh session.
    again = engine.run_script(tmp_path, "attach", [f"jsonl:{tmp_path / 'again.jsonl'}"])
    assert again["installed"] == ["transformers"] and engine.ask("PATCHED") == "True"


def test_cancelled_script_does_nothing_and_removes_its_folder(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "gave-up"
    folder.mkdir()
    marker = folder / "report.json"
    (folder / "report.json.cancel").touch()
    path = tmp_path / "late.py"
    path.write_text(script("attach", [], str(marker)))
    assert engine.ask(f"EXEC {path}") == "OK"
    assert not folder.exists() and engine.ask("PATCHED") == "False"


def test_a_failing_script_reports_its_error(engine: Engine, tmp_path: Path) -> None:
    report = engine.run_script(tmp_path, "attach", ["nosuchscheme:x"])
    assert report["ok"] is False and "nosuchscheme" in str(report["error"])
    assert engine.ask("PATCHED") == "False"


def _python_314() -> str | None:
    return next((p for p in map(shutil.which, ("python3.16", "python3.15", "python3.14")) if p), None)


@pytest.mark.slow
@pytest.mark.skipif(_python_314() is None, reason="no Python 3.14+ interpreter on PATH: sys.remote_exec needs one")
def test_remote_exec_into_a_python_314_process(tmp_path: Path) -> None:
    """`prism attach` then `prism attach --detach` on a real 3.14 process with Prism importable there. Prism and
    its dependencies go into a folder on the target's PYTHONPATH, resolved by this pip for the target's version."""
    target_python = str(_python_314())
    version = subprocess.run(
        [target_python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "wheel"), str(ROOT)], check=True, timeout=300)
    platforms = [
        a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "linux_x86_64") for a in ("--platform", p)
    ]
    site = tmp_path / "site"
    install = [*pip, "install", "--target", str(site), "--python-version", version, "--only-binary=:all:", *platforms]
    subprocess.run([*install, *map(str, (tmp_path / "wheel").glob("*.whl"))], check=True, timeout=900)
    loop = "import time\nwhile True:\n    time.sleep(0.01)\n"
    env = environ_without_prism() | {"PYTHONPATH": str(site)}
    proc = subprocess.Popen([target_python, "-c", loop], env=env)
    try:
        time.sleep(1)
        jsonl = tmp_path / "out.jsonl"
        run = [str(PRISM), "attach", str(proc.pid), "--json", "--export", f"jsonl:{jsonl}"]
        attached = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
        assert attached.returncode == 0, attached.stderr
        report = json.loads(attached.stdout.splitlines()[0])
        assert report["ok"] is True and report["pid"] == proc.pid and report["python"][:2] >= [3, 14]
        assert report["installed"] == []  # a plain loop imports no framework: only the import hook is in place
        detach = [str(PRISM), "attach", "--detach", str(proc.pid), "--json"]
        detached = subprocess.run(detach, capture_output=True, text=True, timeout=120, check=False)
        assert detached.returncode == 0, detached.stderr
        assert json.loads(detached.stdout.splitlines()[0])["action"] == "detach"
        assert proc.poll() is None  # the server runs on
    finally:
        proc.kill()
        proc.wait()
