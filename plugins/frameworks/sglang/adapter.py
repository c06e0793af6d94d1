"""SglangAdapter: checks the installed SGLang, patches its scheduler loop when the scheduler module is imported."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from typing import TYPE_CHECKING

from prism_core.bootstrap.hooks import PostImportHooks
from prism_core.capture.patching import Patcher
from prism_core.capture.stages import StageRecorder
from prism_core.models import Unavailable
from prism_core.settings import elastic_kv, kv_priority
from prism_plugins.frameworks.sglang.loop import SAMPLED_STAGES, SchedulerInstrumentation
from prism_plugins.frameworks.sglang.names import METRIC_GAUGES, METRIC_HISTOGRAMS

if TYPE_CHECKING:
    from prism_plugins.frameworks.sglang.kv import ElasticSglang

SCHEDULER_MODULE = "sglang.srt.managers.scheduler"
MIN_VERSION = (0, 4)
MAX_VERSION = (0, 6)  # exclusive
SUPPORTED = "SGLang >= 0.4, < 0.6 (the get_next_batch_to_run / run_batch / process_batch_result loop)"


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("sglang")
    except importlib.metadata.PackageNotFoundError:
        return None


def _minor(text: str) -> tuple[int, int]:
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in text.split("+")[0].split(".")[:2]]
    major, minor = [*parts, 0, 0][:2]
    return major, minor


class SglangAdapter:
    """Instruments the SGLang scheduler process (the one that runs the event loop)."""

    name = "sglang"
    module = "sglang"
    sampled_stages = SAMPLED_STAGES
    metric_histograms = METRIC_HISTOGRAMS
    metric_gauges = METRIC_GAUGES

    def __init__(self) -> None:
        self._patcher = Patcher()
        self.loop = SchedulerInstrumentation(self._patcher)
        self._hooks: PostImportHooks | None = None
        self.elastic: ElasticSglang | None = None

    def check(self) -> Unavailable | None:
        version = installed_version()
        if version is None or importlib.util.find_spec("sglang") is None:
            return Unavailable(vendor=self.name, reason="sglang is not installed", error_type="ImportError")
        if not MIN_VERSION <= _minor(version) < MAX_VERSION:
            return Unavailable(vendor=self.name, reason=f"SGLang {version} is not supported: {SUPPORTED}")
        return None

    def install(self, recorder: StageRecorder) -> None:
        self.loop.recorder = recorder
        if self._hooks is not None:
            return
        callbacks = {SCHEDULER_MODULE: self._on_import}
        if elastic_kv() is not None:  # KV cache on the elastic pool
            from prism_plugins.frameworks.sglang.kv import MEMORY_MODULES, ElasticSglang

            elastic = self.elastic = ElasticSglang(self._patcher, kv_priority())
            callbacks.update({m: lambda name: elastic.patch_module(sys.modules[name]) for m in MEMORY_MODULES})
        self._hooks = PostImportHooks(callbacks)
        self._hooks.install()

    def _on_import(self, module_name: str) -> None:
        module = sys.modules.get(module_name)
        scheduler = getattr(module, "Scheduler", None)
        if scheduler is None:
            sys.stderr.write(f"prism: sglang {installed_version()}: no {module_name}.Scheduler ({SUPPORTED})\n")
            return
        if self.elastic is not None:  # inside the stage wrapper: waiting for memory is scheduling time
            self.elastic.patch_scheduler(scheduler)
        self.loop.patch(scheduler)

    def uninstall(self) -> None:
        self.loop.recorder = None
        if self._hooks is not None:
            self._hooks.uninstall()
            self._hooks = None
        self._patcher.restore()
        self.elastic = None
