"""Export: OpenTelemetry, JSONL and terminal output of records."""

from prism_core.export.base import Exporter, ExporterFactory, ExportSpec
from prism_core.export.files import ConsoleExporter, JsonlExporter

__all__ = ["ConsoleExporter", "ExportSpec", "Exporter", "ExporterFactory", "JsonlExporter"]
