"""`prism hook install` and PRISM_ENABLE=1: an unchanged program, started without `prism run`, captures itself.

The hook goes into a temporary site folder, which the child adds with `site.addsitedir` (what Python does for its
own site-packages at start-up, .pth files included), so the test never changes this environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prism_core.bootstrap.enable import PTH_LINE, PTH_NAME
from prism_core.testing.enable import environ_without_prism, hooked_pythonpath

pytest.importorskip("transformers")

PROGRAM = str(Path(__file__).resolve().parent / "programs" / "generate_tiny.py")


def _child(site: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The program run as its own interpreter would, with `site` processed as a site-packages folder; then one
    line saying whether Prism's capture session started and its import hook is on sys.meta_path."""
    code = (
        "import runpy, site, sys\n"
        f"site.addsitedir({str(site)!r})\n"
        f"sys.argv = [{PROGRAM!r}, '3']\n"
        "try:\n"
        f"    runpy.run_path({PROGRAM!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "from prism_core.bootstrap.hooks import PostImportHooks as Hooks\n"
        "print('prism_core.capture.session' in sys.modules, any(isinstance(f, Hooks) for f in sys.meta_path))\n"
        "sys.exit(code)\n"
    )
    base = environ_without_prism()
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**base, **env}
    )


def test_install_then_prism_enable_captures_an_unchanged_program(prism_cmd: list[str], tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    run = subprocess.run([*prism_cmd, "hook", "install", "--site", str(site)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (site / PTH_NAME).read_text() == PTH_LINE and list(site.iterdir()) == [site / PTH_NAME]

    jsonl = tmp_path / "r.jsonl"
    on = _child(site, {"PRISM_ENABLE": "1", "PRISM_EXPORT": f"jsonl:{jsonl}"})
    off = _child(site, {"PRISM_EXPORT_UNUSED": str(jsonl)})
    assert on.returncode == off.returncode == 3, on.stderr + off.stderr
    tokens_on, flags_on = on.stdout.splitlines()
    tokens_off, flags_off = off.stdout.splitlines()
    assert tokens_on == tokens_off and tokens_on.startswith("[[")  # the same tokens, instrumented or not
    assert flags_on == "True True" and flags_off == "False False"
    assert "prism:" not in on.stderr
    kinds = [json.loads(line)["kind"] for line in jsonl.read_text().splitlines()]
    assert kinds.count("batch") == 6 and kinds.count("request") == 2

    status = subprocess.run([*prism_cmd, "hook", "status", "--site", str(site)], capture_output=True, text=True)
    assert status.stdout.startswith("installed:")
    removed = subprocess.run([*prism_cmd, "hook", "remove", "--site", str(site)], capture_output=True, text=True)
    assert removed.returncode == 0 and list(site.iterdir()) == []
    status = subprocess.run([*prism_cmd, "hook", "status", "--site", str(site)], capture_output=True, text=True)
    assert status.stdout.startswith("not installed")


def test_a_spawned_child_instruments_itself(tmp_path: Path) -> None:
    """SGLang's scheduler and vLLM's engine core are spawned, fresh interpreters: each must run the hook itself.
    The child here is the only process that imports transformers, so every record is the child's."""
    jsonl = tmp_path / "r.jsonl"
    base = environ_without_prism()
    env = {**base, **hooked_pythonpath(tmp_path), "PRISM_ENABLE": "1", "PRISM_EXPORT": f"jsonl:{jsonl}"}
    program = str(Path(PROGRAM).with_name("spawn_tiny.py"))
    run = subprocess.run([sys.executable, program], capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stderr
    tokens, parent_imported = run.stdout.splitlines()
    assert tokens.startswith("[[") and parent_imported == "False"
    kinds = [json.loads(line)["kind"] for line in jsonl.read_text().splitlines()]
    assert kinds.count("batch") == 6 and kinds.count("request") == 2


def test_an_older_hook_is_reported_and_replaced(prism_cmd: list[str], tmp_path: Path) -> None:
    (tmp_path / PTH_NAME).write_text("import os\n")
    status = subprocess.run([*prism_cmd, "hook", "status", "--site", str(tmp_path)], capture_output=True, text=True)
    assert status.stdout.startswith("outdated:")
    subprocess.run([*prism_cmd, "hook", "install", "--site", str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / PTH_NAME).read_text() == PTH_LINE


def test_a_folder_that_is_not_there_is_one_line_and_exit_2(prism_cmd: list[str], tmp_path: Path) -> None:
    run = subprocess.run(
        [*prism_cmd, "hook", "install", "--site", str(tmp_path / "missing")], capture_output=True, text=True
    )
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "is not a directory" in run.stderr
    assert not (tmp_path / "missing").exists()


def test_a_hook_left_behind_without_prism_does_nothing(prism_cmd: list[str], tmp_path: Path) -> None:
    """`pip uninstall` does not know the .pth: where prism_core is gone, PRISM_ENABLE=1 must not break start-up."""
    subprocess.run([*prism_cmd, "hook", "install", "--site", str(tmp_path)], check=True, capture_output=True)
    # -S: no site-packages, so this environment's prism_core is out of reach; then only the folder with the hook.
    code = f"import site, sys; site.addsitedir({str(tmp_path)!r}); print('prism_core' in sys.modules)"
    env = {"PATH": os.environ.get("PATH", ""), "PRISM_ENABLE": "1"}
    run = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert run.returncode == 0 and run.stdout == "False\n" and run.stderr == ""
