"""A fixed generate() workload on the tiny Llama, run as a program: `python -m ...workload --batch 8 ...`.

It is the "user program" `prism bench capture` times with and without `prism run`: it knows nothing of Prism.
Prints one JSON line: decode tokens/s over the timed rounds, and a digest of the generated tokens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time


def main() -> None:
    import torch

    from prism_plugins.frameworks.transformers.tiny import tiny_llama

    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--input", type=int, default=128)
    p.add_argument("--output", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=0.0, help="keep running rounds until this long (soak runs)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = tiny_llama()
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (a.batch, a.input), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
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


if __name__ == "__main__":
    main()
