"""The example plugin passes Prism's accelerator conformance suite, as every accelerator plugin must."""

from __future__ import annotations

from types import ModuleType

import pytest

import prism_example_plugin
from prism_core.testing import AcceleratorConformance


class TestSimulatedAccelerator(AcceleratorConformance):
    @pytest.fixture
    def prism_plugin(self) -> ModuleType:
        return prism_example_plugin


def test_devices_are_labelled_simulated() -> None:
    devices = prism_example_plugin.prism_xpu_probe()
    assert devices and all(d.simulated and "not real hardware" in d.name for d in devices)
