"""The `prism` command as users run it: real subprocesses, real entry points."""

from __future__ import annotations

import json
import subprocess

import pytest

from prism_core.testing.enable import environ_without_prism


def run(cmd: list[str], *args: str, autoload: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    e = environ_without_prism()
    if not autoload:
        e["PRISM_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    e.update(env)
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=e, timeout=120, check=False)


def test_devices_json_shows_cpu_and_why_vendors_are_missing(prism_cmd: list[str]) -> None:
    r = run(prism_cmd, "devices", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cpu = next(d for d in out["devices"] if d["id"] == "cpu:0")
    assert cpu["properties"]["usable_cpus"] >= 1 and cpu["memory_total_bytes"] > 0
    missing = {u["vendor"]: u for u in out["unavailable"]}
    assert set(missing) == {"nvidia", "amd", "ascend"}  # this kind of machine has no accelerator
    assert all(u["reason"] for u in missing.values())


def test_devices_telemetry_reads_the_host(prism_cmd: list[str]) -> None:
    r = run(prism_cmd, "devices", "--json", "--telemetry")
    sample = json.loads(r.stdout)["telemetry"]["cpu:0"]
    assert sample["values"]["system.memory.limit"] > 0
    assert set(sample["values"]) | set(sample["unreadable"]) >= {"system.cpu.utilization", "system.memory.usage"}


def test_plugins_json_lists_hooks_and_discovers_third_party(prism_cmd: list[str]) -> None:
    r = run(prism_cmd, "plugins", "--json", autoload=True)
    assert r.returncode == 0, r.stderr
    infos = {p["name"]: p for p in json.loads(r.stdout)}
    assert infos["cpu"]["builtin"] and "prism_telemetry_sampler" in infos["cpu"]["hooks"]
    assert infos["nvidia"]["status"] == "unavailable" and "NVML" in infos["nvidia"]["reason"]
    simulated = infos["simulated"]
    assert (simulated["distribution"], simulated["builtin"], simulated["status"]) == (
        "prism-example-plugin",
        False,
        "available",
    )


def test_plugins_flag_restricts_loading(prism_cmd: list[str]) -> None:
    r = run(prism_cmd, "--plugins", "cpu", "plugins", "--json")
    assert [p["name"] for p in json.loads(r.stdout)] == ["cpu"]


def test_human_output(prism_cmd: list[str]) -> None:
    r = run(prism_cmd, "devices")
    assert r.returncode == 0 and "cpu:0" in r.stdout and "unavailable" in r.stdout


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["devices", "--jsn"], {}, "unrecognized arguments: --jsn"),
        (["frobnicate"], {}, "invalid choice: 'frobnicate'"),
        ([], {}, "required: COMMAND"),
        (["plugins"], {"PRISM_PLUGINS": "cpuu"}, "PRISM_PLUGINS names unknown plugin(s) cpuu"),
        (["plugins"], {"PRISM_TRACE_PLUGINS": "sometimes"}, "PRISM_TRACE_PLUGINS='sometimes'"),
        (["--log-level", "LOUD", "plugins"], {}, "PRISM_LOG_LEVEL='LOUD'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    prism_cmd: list[str], args: list[str], env: dict[str, str], needle: str
) -> None:
    r = run(prism_cmd, *args, **env)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
