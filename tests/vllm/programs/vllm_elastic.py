"""One in-process vLLM engine generating fixed greedy requests; run with the vLLM venv's python.

    VENV/bin/python vllm_elastic.py MODEL_DIR REQUESTS [hold]

Prints `READY <bytes of one page id>` once the engine is up, waits for a line on stdin (so several engines can
start generating at once), then prints one JSON line: the generated token ids and, under PRISM_ELASTIC_KV=1, what
the pool saw (scheduling misses, the most bytes the cache held, its broker name). With `hold` it then stays up,
idle, until a second line. The `__main__` guard keeps vLLM's helpers from re-running it.
"""

from __future__ import annotations

import json
import sys
import threading

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "one", "server", "batches"]


def prompts(n: int) -> list[str]:
    """~160-token prompts: with 24 new tokens each request needs two 128-token blocks."""
    return [" ".join(WORDS[(i * 7 + j * (i % 5 + 1)) % len(WORDS)] for j in range(100 + i % 9)) for i in range(n)]


def main() -> None:
    import vllm

    from prism_plugins.frameworks.vllm import kv

    llm = vllm.LLM(sys.argv[1], enforce_eager=True, max_model_len=256, seed=0)
    elastic = kv.installed()
    cache = elastic.pools[0].cache if elastic and elastic.pools else None
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while cache is not None and not done.wait(0.002):
            peak[0] = max(peak[0], cache.usage().held_bytes)

    print("READY", cache.usage().page_bytes if cache is not None else 0, flush=True)
    sys.stdin.readline()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    params = vllm.SamplingParams(max_tokens=24, temperature=0, ignore_eos=True)
    outs = llm.generate(prompts(int(sys.argv[2])), params, use_tqdm=False)
    done.set()
    sampler.join()
    result: dict[str, object] = {"tokens": [list(o.outputs[0].token_ids) for o in outs]}
    if cache is not None and elastic is not None:
        page = cache.usage().page_bytes
        result.update(name=cache.name, misses=sum(p.misses for p in elastic.pools), peak_held=peak[0], page_bytes=page)
    print(json.dumps(result), flush=True)
    if sys.argv[3:] == ["hold"]:
        sys.stdin.readline()


if __name__ == "__main__":
    main()
