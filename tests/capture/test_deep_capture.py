"""Deep capture: torch.profiler operator timing of N real generate() iterations, started from another thread."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from prism_core.capture.deep import DeepRecorder, OperatorCapture
from prism_core.capture.recorder import RingRecorder
from prism_core.capture.session import CaptureSession
from prism_core.models import BatchRecord
from prism_core.testing import InMemoryExporter


def _generate(model: Any, prompts: Any, tokens: int) -> Any:
    import torch

    ids, mask = prompts
    with torch.inference_mode():
        return model.generate(ids, attention_mask=mask, max_new_tokens=tokens, do_sample=False)


def test_armed_from_another_thread_times_operators_inside_stages(
    tiny_model: Any, prompts: Any, memory_session: tuple[CaptureSession, InMemoryExporter], tmp_path: Path
) -> None:
    session, exporter = memory_session
    session.install_all("transformers")
    deep = session.operator_capture(3)
    assert deep is not None
    plain = _generate(tiny_model, prompts, 6)
    path = tmp_path / "alert-1.ops.trace.json"
    done = threading.Event()
    # Armed from a thread other than the engine's, as the collector thread does after a diagnosis.
    armer = threading.Thread(target=lambda: deep.arm(path, lambda p: done.set()))
    armer.start()
    armer.join()
    assert deep.busy and session.ring_recorder.__class__ is DeepRecorder
    assert not deep.arm(tmp_path / "second.json")  # one capture at a time
    profiled = _generate(tiny_model, prompts, 6)
    assert done.wait(60), "the operator trace was never written"
    assert session.ring_recorder.__class__ is RingRecorder and not deep.busy
    assert profiled.tolist() == plain.tolist()  # profiling never changes what the engine computes
    assert deep.written == [path] and not list(tmp_path.glob("*.part"))
    events = json.loads(path.read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    assert {"prepare_inputs", "forward", "sample", "postprocess"} <= names  # Prism's stages as ranges
    assert any(str(n).startswith("aten::") for n in names)  # and the operators inside them
    # Exactly the 3 armed iterations were profiled: one range per stage per iteration.
    assert sum(1 for e in events if e.get("name") == "forward" and e.get("ph") == "X") == 3
    session.flush()
    batches = [r for r in exporter.records if isinstance(r, BatchRecord)]
    assert len(batches) == 2 * 6  # capture went on as usual, during and after the deep window
    deep.close()


def test_closing_before_the_engine_runs_again_disarms_and_writes_nothing(
    memory_session: tuple[CaptureSession, InMemoryExporter], tmp_path: Path
) -> None:
    deep = OperatorCapture(memory_session[0].ring_recorder, batches=2)
    assert deep.arm(tmp_path / "x.json")  # an alert diagnosed as the program ends: no iteration follows
    deep.close()
    assert memory_session[0].ring_recorder.__class__ is RingRecorder and not deep.busy
    assert not list(tmp_path.iterdir())


# An engine that stops while a capture is still armed (an alert just before the program ends). Run in a child: the
# failure this guards against is the interpreter crashing at exit, which would take the test process with it.
_CUT_SHORT = """
import sys, threading
from pathlib import Path
import torch
from prism_core.capture.session import CaptureSession
from prism_core.plugins import host
from prism_core.testing import InMemoryExporter
from prism_plugins.frameworks.transformers.tiny import tiny_llama

model = tiny_llama()
session = CaptureSession([InMemoryExporter()], plugin_host=host(), device_id="cpu:0")
session.install_all("transformers")
deep = session.operator_capture(50)
assert deep.arm(Path(sys.argv[1]))

def engine():
    with torch.inference_mode():
        model.generate(torch.randint(3, 500, (1, 8)), max_new_tokens=3, do_sample=False)

t = threading.Thread(target=engine)
t.start()
t.join()
assert deep.busy  # 3 of the 50 armed batches ran; the engine's thread is gone
deep.close()
session.close()
print("closed", flush=True)
"""


def test_a_capture_the_engine_cut_short_is_stopped_without_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "alert-1.ops.trace.json"
    r = subprocess.run([sys.executable, "-c", _CUT_SHORT, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "closed" in r.stdout, r.stderr[-2000:]  # not -11: the profiler was stopped
    assert "47 batch(es) short of the capture" in r.stderr
    assert not list(tmp_path.iterdir())  # torch's results from another thread are not exported, nor half-written


def test_zero_batches_is_refused(memory_session: tuple[CaptureSession, InMemoryExporter]) -> None:
    with pytest.raises(ValueError, match="at least one batch"):
        OperatorCapture(memory_session[0].ring_recorder, batches=0)
    assert memory_session[0].ring_recorder.__class__ is RingRecorder  # nothing armed
