"""Framework adapters: the interface framework plugins implement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from prism_core.capture.stages import StageRecorder
from prism_core.models import Unavailable


@runtime_checkable
class FrameworkAdapter(Protocol):
    """Instruments one serving framework inside the current process, with no change to its code."""

    name: str
    module: str
    """Top-level import name of the framework: the `prism run` bootstrap installs the adapter when it is imported."""
    sampled_stages: Mapping[str, str]
    """Function qualname, as a stack sampler shows it (`Class.method`) -> canonical stage. `prism attach` uses it
    when it cannot run inside the process: a sample belongs to the stage of its innermost named frame."""
    metric_histograms: Mapping[str, str]
    """The engine's Prometheus histograms (seconds, `<engine>:` prefix) -> the RequestRecord field each
    summarises; empty when the engine serves no metrics. `prism attach` reports their means per interval."""
    metric_gauges: Mapping[str, str]
    """The engine's Prometheus gauges and counters `prism attach` reports as they are -> the name it gives them."""

    def check(self) -> Unavailable | None:
        """None if the framework is importable here at a version this adapter knows; else why not.

        Must not import the framework if it is not already importable cheaply (no engine start-up).
        """
        ...

    def install(self, recorder: StageRecorder) -> None:
        """Wrap the engine's step so every iteration reports its stages to `recorder`. Idempotent."""
        ...

    def uninstall(self) -> None:
        """Restore every patched attribute exactly. Idempotent; safe when never installed."""
        ...
