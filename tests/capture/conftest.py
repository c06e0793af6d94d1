"""Fixtures for capture tests: a tiny random Llama (no download) and a capture session on the host CPU."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from prism_core.capture.session import CaptureSession
from prism_core.plugins import PluginHost
from prism_core.testing import InMemoryExporter

SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 512}


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    pytest.importorskip("transformers")
    from prism_plugins.frameworks.transformers.tiny import tiny_llama

    return tiny_llama(**SMALL)


@pytest.fixture
def prompts() -> Any:
    import torch

    ids = torch.randint(3, SMALL["vocab_size"], (3, 10), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[2, :4] = 0  # left padding: the third prompt is 6 tokens long
    return ids, mask


@pytest.fixture
def memory_session(builtin_host: PluginHost) -> Iterator[tuple[CaptureSession, InMemoryExporter]]:
    exporter = InMemoryExporter()
    session = CaptureSession([exporter], plugin_host=builtin_host, device_id="cpu:0")
    yield session, exporter
    session.close()
