"""The transformers adapter on a real tiny Llama: conformance, workload, requests, continuous batching."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from prism_core.capture.session import CaptureSession
from prism_core.models import BatchRecord, RequestRecord
from prism_core.plugins import PluginHost
from prism_core.testing import FrameworkAdapterConformance, InMemoryExporter, RecordingRecorder

pytest.importorskip("transformers")

from prism_plugins.frameworks.transformers import TransformersAdapter

NEW_TOKENS = 4


def _generate(model: Any, prompts: Any) -> Any:
    ids, mask = prompts
    return model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=False)


class TestTransformersConformance(FrameworkAdapterConformance):
    @pytest.fixture
    def adapter(self) -> TransformersAdapter:
        return TransformersAdapter()

    @pytest.fixture
    def run_iteration(self, tiny_model: Any, prompts: Any) -> Callable[[], object]:
        return lambda: _generate(tiny_model, prompts)


def test_plugin_contributes_the_adapter(builtin_host: PluginHost) -> None:
    assert any(a.name == "transformers" for a in builtin_host.framework_adapters())


def test_generate_iterations_and_workload(tiny_model: Any, prompts: Any) -> None:
    adapter, rec = TransformersAdapter(), RecordingRecorder()
    adapter.install(rec)
    try:
        _generate(tiny_model, prompts)
    finally:
        adapter.uninstall()
    workloads = [w for kind, w in rec.iterations if kind == "end"]
    assert [w.mode for w in workloads if w] == ["prefill"] + ["decode"] * (NEW_TOKENS - 1)
    prefill = workloads[0]
    assert prefill is not None
    assert (prefill.batch_size, prefill.prefill_tokens, prefill.max_input_len) == (3, 26, 10)
    last = workloads[-1]
    assert last is not None and last.decode_tokens == 3 and last.kv_tokens == 26 + 3 * (NEW_TOKENS - 1)
    assert [r.output_tokens for r in rec.requests] == [NEW_TOKENS] * 3
    assert [r.input_tokens for r in rec.requests] == [10, 10, 6]
    first = rec.requests[0]
    assert first.first_token_ns is not None and first.arrival_ns < first.first_token_ns < first.end_ns


def test_same_tokens_with_and_without_capture(tiny_model: Any, prompts: Any, builtin_host: PluginHost) -> None:
    plain = _generate(tiny_model, prompts)
    exporter = InMemoryExporter()
    session = CaptureSession([exporter], plugin_host=builtin_host, device_id="cpu:0")
    assert session.install_all("transformers") == {}
    captured = _generate(tiny_model, prompts)
    session.close()
    assert captured.tolist() == plain.tolist()
    batches = [r for r in exporter.records if isinstance(r, BatchRecord)]
    requests = [r for r in exporter.records if isinstance(r, RequestRecord)]
    assert len(batches) == NEW_TOKENS and len(requests) == 3
    assert set(batches[0].stages) == {"prepare_inputs", "forward", "sample", "postprocess"}
    assert all(b.device == "cpu:0" and b.engine == "transformers" for b in batches)
    assert all(r.ttft_s is not None and r.ttft_s <= r.e2e_s for r in requests)


def test_uninstall_restores_the_exact_attributes() -> None:
    from transformers.generation.continuous_batching.continuous_api import ContinuousBatchProcessor
    from transformers.generation.stopping_criteria import StoppingCriteriaList
    from transformers.generation.utils import GenerationMixin

    before = (GenerationMixin.generate, StoppingCriteriaList.__call__, ContinuousBatchProcessor.update_batch)
    adapter = TransformersAdapter()
    adapter.install(RecordingRecorder())
    adapter.install(RecordingRecorder())
    assert GenerationMixin.generate is not before[0]
    adapter.uninstall()
    adapter.uninstall()
    after = (GenerationMixin.generate, StoppingCriteriaList.__call__, ContinuousBatchProcessor.update_batch)
    assert after == before


def test_continuous_batching_stages_and_requests(tiny_model: Any) -> None:
    from transformers import GenerationConfig
    from transformers.generation import ContinuousBatchingConfig

    adapter, rec = TransformersAdapter(), RecordingRecorder()
    adapter.install(rec)
    assert adapter.continuous_batching
    try:
        out = tiny_model.generate_batch(
            [[5, 6, 7, 8], [9, 10, 11]],
            generation_config=GenerationConfig(max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0),
            continuous_batching_config=ContinuousBatchingConfig(num_blocks=16, max_batch_tokens=64, page_size=16),
            warmup=False,
        )
    finally:
        adapter.uninstall()
    assert [len(o.generated_tokens) for o in out.values()] == [5, 5]
    stages = {stage for _, stage in rec.calls}
    assert stages == {"schedule", "prepare_inputs", "forward", "sample", "postprocess"}
    modes = [w.mode for kind, w in rec.iterations if kind == "end" and w]
    assert modes[0] == "prefill" and set(modes[1:]) == {"decode"}
    assert sorted(r.input_tokens for r in rec.requests) == [3, 4]
    for r in rec.requests:
        assert r.output_tokens == 5 and r.finish_reason == "length"
        assert r.first_token_ns is not None and r.arrival_ns <= r.scheduled_ns <= r.first_token_ns <= r.end_ns


def test_unknown_version_is_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.5.1")  # the vendor's version boundary
    reason = TransformersAdapter().check()
    assert reason is not None and "3.5.1" in reason.reason
