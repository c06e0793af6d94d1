"""A fixed generate() workload, run as a program: `python -m ...workload --batch 8 ... [--model smollm2]`.

It is the "user program" `prism bench capture` times with and without `prism run`: it knows nothing of Prism.
Prints one JSON line: decode tokens/s over the timed rounds, and a digest of the generated tokens.

`--ab-export SPEC` is the one exception: the same process times its rounds alternately with the transformers
adapter installed (capture on, exporting to SPEC) and uninstalled, and prints the per-pair ratios. Slow drift of a
shared machine then hits both sides of every pair alike; what it leaves out is whatever Prism costs a process
merely by being loaded, which the separate-process comparison includes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from typing import Any


def main() -> None:
    import torch

    from prism_core.demo.engine import load_model

    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--input", type=int, default=128)
    p.add_argument("--output", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=0.0, help="keep running rounds until this long (soak runs)")
    p.add_argument("--ab-export", metavar="SPEC", help="alternate rounds with and without capture in this process")
    p.add_argument("--model", choices=("tiny", "smollm2"), default="tiny", help="tiny random Llama, or SmolLM2-135M")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = load_model(a.model)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (a.batch, a.input), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    if a.ab_export:
        print(json.dumps(alternate(model, ids, mask, a.output, a.rounds, a.ab_export)))
        return
    with torch.inference_mode():
        model.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False)  # warm-up
        digest = hashlib.sha256()
        start = time.perf_counter()
        rounds = 0
        while rounds < a.rounds or time.perf_counter() - start < a.seconds:
            out = model.generate(ids, attention_mask=mask, max_new_tokens=a.output, min_new_tokens=a.output)
            digest.update(str(out.tolist()).encode())
            rounds += 1
        elapsed = time.perf_counter() - start
    tokens = rounds * a.batch * a.output
    print(
        json.dumps(
            {"tokens_per_s": tokens / elapsed, "seconds": elapsed, "tokens": tokens, "digest": digest.hexdigest()}
        )
    )


def alternate(model: Any, ids: Any, mask: Any, output: int, pairs: int, spec: str) -> dict[str, Any]:
    """`pairs` pairs of generate() rounds, one with capture on and one without, order alternating per pair."""
    import torch

    from prism_core.capture import bench
    from prism_core.capture.session import CaptureSession

    session = CaptureSession.from_specs([spec])
    adapter = next(a for a in session.host.framework_adapters() if getattr(a, "module", None) == "transformers")

    def tokens_per_s() -> float:
        start = time.perf_counter()
        model.generate(ids, attention_mask=mask, max_new_tokens=output, min_new_tokens=output)
        return ids.shape[0] * output / (time.perf_counter() - start)

    with torch.inference_mode():
        model.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False)  # warm-up
        rounds = bench.alternate(session, adapter, pairs, tokens_per_s)
    session.close()
    return {**rounds, "batches": session.collector.stats().batches}


if __name__ == "__main__":
    main()
