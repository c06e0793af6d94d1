"""The SGLang adapter against SGLang's loop call sequences (prism_core.testing.sglang_loop), and, where SGLang
and a GPU are present, against the real engine (`gpu`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sglang_engine import generate, model

from prism_core.capture.patching import Patcher
from prism_core.export.files import read_jsonl
from prism_core.models import BatchRecord, RequestRecord
from prism_core.plugins import PluginHost
from prism_core.testing import RecordingRecorder
from prism_core.testing.sglang_loop import Req, Scheduler
from prism_plugins.frameworks.sglang import SchedulerInstrumentation
from prism_plugins.frameworks.sglang.adapter import installed_version

NEW_TOKENS = 3


def _requests() -> list[Req]:
    return [Req(f"r{i}", list(range(4 + i)), NEW_TOKENS) for i in range(3)]


@pytest.fixture
def recorded() -> Iterator[RecordingRecorder]:
    patcher, rec = Patcher(), RecordingRecorder()
    loop = SchedulerInstrumentation(patcher)
    loop.recorder = rec
    loop.patch(Scheduler)
    yield rec
    patcher.restore()


def _iterations(rec: RecordingRecorder) -> list[str]:
    return [w.mode for kind, w in rec.iterations if kind == "end" and w is not None]


def test_normal_loop_one_iteration_per_batch(recorded: RecordingRecorder) -> None:
    Scheduler(_requests()).event_loop_normal(passes=NEW_TOKENS + 3)
    assert _iterations(recorded) == ["prefill"] + ["decode"] * (NEW_TOKENS - 1)
    first = next(w for kind, w in recorded.iterations if kind == "end" and w is not None)
    assert (first.batch_size, first.prefill_tokens, first.max_input_len, first.model) == (3, 15, 6, "stand-in")
    # The first pass after idle has no schedule stage: idle passes (a busy loop in SGLang) are not recorded.
    per_pass = ["schedule", "forward", "postprocess"]
    stages = [s for kind, s in recorded.calls if kind == "begin"]
    assert stages[: 3 * NEW_TOKENS - 1] == per_pass[1:] + per_pass * (NEW_TOKENS - 1)
    assert sorted(r.output_tokens for r in recorded.requests) == [NEW_TOKENS] * 3
    for r in recorded.requests:
        assert r.first_token_ns is not None and r.scheduled_ns <= r.first_token_ns <= r.end_ns
        assert r.finish_reason == "length" and r.input_tokens in (4, 5, 6)


def test_overlap_loop_postprocesses_the_previous_batch(recorded: RecordingRecorder) -> None:
    scheduler = Scheduler(_requests())
    scheduler.event_loop_overlap(passes=NEW_TOKENS + 3)
    # Pass 1 launches the prefill; each later pass launches batch i+1 and post-processes batch i.
    assert scheduler.calls[:5] == [
        "get_next_batch_to_run", "run_batch", "get_next_batch_to_run", "run_batch", "process_batch_result",
    ]  # fmt: skip
    modes = _iterations(recorded)
    assert modes[0] == "prefill" and set(modes[1:]) == {"decode"}
    begins = [s for kind, s in recorded.calls if kind == "begin"]
    assert begins[:1] == ["forward"] and begins[1:4] == ["schedule", "forward", "postprocess"]
    assert sorted(r.output_tokens for r in recorded.requests) == [NEW_TOKENS] * 3


def test_idle_passes_record_nothing(recorded: RecordingRecorder) -> None:
    Scheduler([]).event_loop_normal(passes=50)
    assert recorded.calls == [] and recorded.requests == []
    assert [k for k, _ in recorded.iterations] == []


def test_uninstall_restores_the_loop() -> None:
    before = {n: Scheduler.__dict__[n] for n in ("get_next_batch_to_run", "run_batch", "process_batch_result")}
    patcher = Patcher()
    SchedulerInstrumentation(patcher).patch(Scheduler)
    assert Scheduler.__dict__["run_batch"] is not before["run_batch"]
    patcher.restore()
    assert {n: Scheduler.__dict__[n] for n in before} == before


def test_plugin_contributes_the_adapter(builtin_host: PluginHost) -> None:
    (adapter,) = [a for a in builtin_host.framework_adapters() if a.name == "sglang"]
    if installed_version() is None:
        reason = adapter.check()
        assert reason is not None and reason.reason == "sglang is not installed"


@pytest.mark.gpu
def test_real_sglang_engine_under_prism_run(tmp_path: Path) -> None:
    """A real SGLang engine (GPU only: no CPU build on PyPI) under `prism run`: its scheduler process records one
    iteration per batch, prefill then decode, with SGLang's stages and one RequestRecord per request."""
    texts, _ = generate(tmp_path, model(tmp_path), NEW_TOKENS)
    assert len(texts) == 4
    got = read_jsonl(tmp_path / "records.jsonl")
    batches = [r for r in got if isinstance(r, BatchRecord)]
    requests = [r for r in got if isinstance(r, RequestRecord)]
    assert {b.mode for b in batches} == {"prefill", "decode"} and batches[0].mode == "prefill"
    assert {"schedule", "forward", "postprocess"} <= set().union(*(b.stages for b in batches))
    assert all(b.engine == "sglang" and sum(s.wall_ns for s in b.stages.values()) <= b.duration_ns for b in batches)
    assert sorted(r.output_tokens for r in requests) == [NEW_TOKENS] * 4


@pytest.mark.gpu
def test_real_sglang_engine_with_prism_enable(tmp_path: Path) -> None:
    """The README's SGLang path: the unchanged command with PRISM_ENABLE=1 and the start-up hook. The scheduler,
    a spawned process, instruments itself; the greedy texts equal those of a run without Prism."""
    model_dir = model(tmp_path)
    plain, _ = generate(tmp_path, model_dir, NEW_TOKENS, via="none")
    assert not (tmp_path / "records.jsonl").exists()
    texts, stderr = generate(tmp_path, model_dir, NEW_TOKENS, via="enable")
    assert texts == plain and "prism:" not in stderr
    got = read_jsonl(tmp_path / "records.jsonl")
    assert any(isinstance(r, BatchRecord) and r.engine == "sglang" for r in got)
    assert sorted(r.output_tokens for r in got if isinstance(r, RequestRecord)) == [NEW_TOKENS] * 4
