"""The engine side of the validation, run as a program under `prism run --export jsonl:PATH`.

`python -m prism_core.schedule.validation.sweep --batches 1,4 --inputs 32,128 --new-tokens 6` measures this core
(numpy copy bandwidth and matmul FLOP/s, one BLAS thread), then runs generate() on the tiny random Llama for
every (batch, prompt length) pair, one torch thread. It knows nothing of capture: `prism run` records one
BatchRecord per model forward (the first of each call a prefill, the rest decode steps). It prints one JSON
line: the measured device and the model's shape, which the validation needs for the roofline.
"""

from __future__ import annotations

import argparse
import json


def _ints(arg: str) -> list[int]:
    return [int(v) for v in arg.split(",") if v.strip()]


def main() -> None:
    import importlib

    import torch

    from prism_core.schedule.validation.cpu_spec import measure_cpu

    # prism_core never imports plugin packages statically; the tiny model is the transformers plugin's.
    tiny_llama = importlib.import_module("prism_plugins.frameworks.transformers.tiny").tiny_llama

    p = argparse.ArgumentParser()
    p.add_argument("--batches", type=_ints, default=[1, 2, 4, 8, 16])
    p.add_argument("--inputs", type=_ints, default=[16, 64, 128, 256, 512])
    p.add_argument("--new-tokens", type=int, default=8)
    a = p.parse_args()
    torch.set_num_threads(1)
    device = measure_cpu()
    model = tiny_llama()
    cfg = model.config
    vocab = int(cfg.vocab_size)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        warm = torch.randint(3, vocab, (1, 3), generator=gen)  # a 3-token prompt: never on the grid
        model.generate(warm, attention_mask=torch.ones_like(warm), max_new_tokens=2, do_sample=False)
        for batch in a.batches:
            for length in a.inputs:
                ids = torch.randint(3, vocab, (batch, length), generator=gen)
                model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=a.new_tokens,
                    min_new_tokens=a.new_tokens,
                    do_sample=False,
                )
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    dtype_bytes = next(model.parameters()).element_size()
    shape = {
        "params": sum(t.numel() for t in model.parameters()),
        "layers": int(cfg.num_hidden_layers),
        "hidden": int(cfg.hidden_size),
        "kv_bytes_per_token": 2 * int(cfg.num_hidden_layers) * int(cfg.num_key_value_heads) * head_dim * dtype_bytes,
        "dtype_bytes": dtype_bytes,
    }
    print(json.dumps({"device": device.model_dump(), "model": shape, "name": str(cfg._name_or_path)}))


if __name__ == "__main__":
    main()
