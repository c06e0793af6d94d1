"""FrameworkAdapterConformance against a real in-process vLLM engine; run with the vLLM venv's python.

    VENV/bin/python vllm_conformance.py MODEL_DIR

The engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0), so one `LLM.generate` call drives the
patched scheduler and model runner here. The `__main__` guard keeps vLLM's spawned helpers from re-running pytest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

from prism_core.testing import FrameworkAdapterConformance, RecordingRecorder
from prism_plugins.frameworks.vllm import VllmAdapter

MODEL = os.environ.get("PRISM_TEST_MODEL_DIR", "")
NEW_TOKENS = 3


@pytest.fixture(scope="module")
def llm() -> Any:
    import vllm

    return vllm.LLM(model=MODEL, dtype="bfloat16", max_model_len=512, max_num_seqs=8, enforce_eager=True, seed=0)


def _generate(llm: Any) -> list[list[int]]:
    import vllm

    params = vllm.SamplingParams(temperature=0, max_tokens=NEW_TOKENS, ignore_eos=True)
    outputs = llm.generate(["the quick brown fox", "a server batches requests"], params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outputs]


class TestVllmConformance(FrameworkAdapterConformance):
    @pytest.fixture
    def adapter(self) -> VllmAdapter:
        return VllmAdapter()

    @pytest.fixture
    def run_iteration(self, llm: Any) -> Callable[[], object]:
        return lambda: _generate(llm)


def test_workload_and_requests(llm: Any) -> None:
    plain = _generate(llm)
    adapter, rec = VllmAdapter(), RecordingRecorder()
    adapter.install(rec)
    try:
        captured = _generate(llm)
    finally:
        adapter.uninstall()
    assert captured == plain, "instrumentation changed the generated tokens"
    workloads = [w for kind, w in rec.iterations if kind == "end" and w is not None]
    assert [w.mode for w in workloads] == ["prefill"] + ["decode"] * (NEW_TOKENS - 1)
    prefill, last = workloads[0], workloads[-1]
    assert prefill.batch_size == 2 and prefill.prefill_tokens == prefill.kv_tokens > 0
    assert last.decode_tokens == 2 and last.kv_tokens == prefill.kv_tokens + 2 * (NEW_TOKENS - 1)
    assert all(w.engine == "vllm" and w.model == MODEL for w in workloads)
    assert sorted(r.output_tokens for r in rec.requests) == [NEW_TOKENS] * 2
    for r in rec.requests:
        assert r.first_token_ns is not None
        assert r.arrival_ns <= r.scheduled_ns < r.first_token_ns < r.end_ns
        assert r.finish_reason == "length" and r.input_tokens > 0
    stages = {stage for _, stage in rec.calls}
    assert stages == {"schedule", "prepare_inputs", "forward", "sample", "postprocess"}


def test_unsupported_version_is_one_clear_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from prism_plugins.frameworks.vllm import adapter as module

    monkeypatch.setattr(module, "installed_version", lambda: "0.6.3")
    reason = VllmAdapter().check()
    assert reason is not None and "0.6.3" in reason.reason and ">= 0.30" in reason.reason


if __name__ == "__main__":
    MODEL = sys.argv[1]
    os.environ["PRISM_TEST_MODEL_DIR"] = MODEL
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", here]))
