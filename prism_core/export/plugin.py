"""Built-in exporters, registered through the `prism` entry-point group like any plugin."""

from __future__ import annotations

from prism_core.export.base import ExporterFactory
from prism_core.export.chrome import ChromeExporters
from prism_core.export.files import FileExporters
from prism_core.export.otel import OtlpExporters
from prism_core.hookspecs import hookimpl


@hookimpl
def prism_exporters() -> list[ExporterFactory]:
    return [FileExporters(), OtlpExporters(), ChromeExporters()]
