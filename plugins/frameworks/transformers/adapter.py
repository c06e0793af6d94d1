"""TransformersAdapter: checks the installed version, installs generate() and continuous-batching capture."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from collections.abc import Mapping
from types import MappingProxyType

from prism_core.capture.patching import Patcher
from prism_core.capture.stages import StageRecorder
from prism_core.models import Unavailable
from prism_core.settings import elastic_kv
from prism_plugins.frameworks.transformers.continuous import SAMPLED_STAGES, ContinuousInstrumentation
from prism_plugins.frameworks.transformers.generate import GenerateInstrumentation

log = logging.getLogger("prism.frameworks.transformers")

# Versions whose generation loop this adapter describes (checked against 4.57 and 5.23 internals).
KNOWN_MAJOR = (4, 5)
MIN_VERSION = (4, 50)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class TransformersAdapter:
    """Instruments Hugging Face transformers in this process. Patches are class attributes, restored exactly."""

    name = "transformers"
    module = "transformers"
    sampled_stages = SAMPLED_STAGES  # continuous batching; generate()'s stages are cut points, not functions
    metric_histograms: Mapping[str, str] = MappingProxyType({})  # no metrics endpoint of its own
    metric_gauges: Mapping[str, str] = MappingProxyType({})

    def __init__(self) -> None:
        self._patcher = Patcher()
        self._generate = GenerateInstrumentation(self._patcher)
        self._continuous = ContinuousInstrumentation(self._patcher)
        self.continuous_batching: bool | None = None  # known after install: whether this version has it

    def check(self) -> Unavailable | None:
        if importlib.util.find_spec("transformers") is None:
            return Unavailable(vendor=self.name, reason="transformers is not installed", error_type="ImportError")
        version = importlib.metadata.version("transformers")
        parsed = _version_tuple(version)
        if parsed < MIN_VERSION or parsed[0] not in KNOWN_MAJOR:
            return Unavailable(
                vendor=self.name,
                reason=f"transformers {version} is not a version this adapter knows (>= 4.50, < 6)",
            )
        return None

    def install(self, recorder: StageRecorder) -> None:
        self._generate.install(recorder)
        setting = elastic_kv()
        if setting is not None:  # KV cache on the elastic pool
            from prism_plugins.frameworks.transformers.kv import install_elastic_kv

            install_elastic_kv(self._patcher, setting)
        try:
            self._continuous.install(recorder)
            self.continuous_batching = True
        except (ImportError, AttributeError) as exc:  # older releases have no continuous batching
            log.info("transformers continuous batching not instrumented: %s", exc)
            self.continuous_batching = False

    def uninstall(self) -> None:
        self._generate.recorder = None
        self._continuous.recorder = None
        self._patcher.restore()
