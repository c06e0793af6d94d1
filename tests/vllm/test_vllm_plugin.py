"""The vLLM plugin where vLLM is not installed (this venv): registration, activation switch, version check.

The adapter against a real engine is test_vllm_conformance.py and test_vllm_server.py (slow, own venv).
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import subprocess
import sys
import types

import pytest

from prism_core.bootstrap.enable import enabled
from prism_core.capture.patching import Patcher
from prism_core.plugins import PluginHost
from prism_plugins.frameworks.vllm import VllmAdapter, names
from prism_plugins.frameworks.vllm.adapter import installed_version
from prism_plugins.frameworks.vllm.engine import RUNNER, EngineInstrumentation


def test_plugin_contributes_the_adapter(builtin_host: PluginHost) -> None:
    adapters = [a for a in builtin_host.framework_adapters() if a.name == "vllm"]
    assert len(adapters) == 1 and adapters[0].module == "vllm"


def test_general_plugin_entry_point_is_declared() -> None:
    eps = importlib.metadata.entry_points(group="vllm.general_plugins")
    ours = [ep for ep in eps if ep.value == "prism_plugins.frameworks.vllm.activate:register"]
    assert len(ours) == 1
    assert callable(ours[0].load())


@pytest.mark.skipif(installed_version() is not None, reason="vllm is installed here")
def test_missing_vllm_is_a_reason_not_an_error() -> None:
    reason = VllmAdapter().check()
    assert reason is not None and reason.reason == "vllm is not installed"


def test_switch_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRISM_ENABLE", raising=False)
    monkeypatch.delenv("PRISM_EXPORT", raising=False)
    assert not enabled()
    monkeypatch.setenv("PRISM_ENABLE", "1")
    assert enabled()
    monkeypatch.setenv("PRISM_ENABLE", "0")
    assert not enabled()
    monkeypatch.setenv("PRISM_EXPORT", "jsonl:/tmp/x.jsonl")  # under `prism run`
    assert enabled()


def test_register_without_the_switch_does_nothing() -> None:
    # A fresh interpreter: no capture session, thread or import hook may start when vLLM loads the plugin unasked.
    code = (
        "import sys, threading; from prism_plugins.frameworks.vllm.activate import register; register(); "
        "from prism_core.bootstrap.hooks import PostImportHooks; "
        "print(threading.active_count() - 1, 'prism_core.capture.session' in sys.modules, "
        "any(isinstance(f, PostImportHooks) for f in sys.meta_path))"
    )
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60)
    assert out.stdout.split() == ["0", "False", "False"]


def test_vllm_names_map_to_names_prism_uses() -> None:
    from prism_core.export import names as prism_names
    from prism_core.models import RequestRecord

    on_the_wire = {v for k, v in vars(prism_names).items() if k.isupper() and isinstance(v, str)}
    assert set(names.SPAN_TO_CURRENT.values()) <= on_the_wire
    assert {metric for metric, _ in names.METRIC_HISTOGRAMS.values()} <= on_the_wire
    fields = set(RequestRecord.model_fields)
    assert set(names.SPAN_TO_RECORD.values()) <= fields
    assert {field for _, field in names.METRIC_HISTOGRAMS.values()} <= fields


def test_model_runner_left_alone_in_a_multiprocess_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the multiprocess executor's workers the runner's wrappers could only pass calls through (the engine core
    records the step), so they are not installed there; anywhere else they are."""

    class GPUModelRunner:
        def execute_model(self) -> str:
            return "ran"

        sample_tokens = _update_states = _prepare_inputs = _preprocess = execute_model

    def patched_in(process_name: str) -> bool:
        module = types.ModuleType(RUNNER)
        module.GPUModelRunner = type("GPUModelRunner", (GPUModelRunner,), {})  # type: ignore[attr-defined]
        monkeypatch.setattr(multiprocessing.current_process(), "name", process_name)
        assert EngineInstrumentation(Patcher()).patch_module(module) == []
        return "execute_model" in vars(module.GPUModelRunner)

    assert not patched_in("VllmWorker-0")
    assert patched_in("EngineCore_DP0") and patched_in("MainProcess")
