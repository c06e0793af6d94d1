"""A tiny random-weight Llama built in memory (no download), for tests, `prism demo` and `prism bench capture`."""

from __future__ import annotations

from typing import Any

TINY = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 4096,
    "max_position_embeddings": 1024,
}
"""About 4.5 M parameters: ~3k decode tokens/s at batch 8 on one core of this project's CI machine."""


def tiny_llama(seed: int = 0, **overrides: Any) -> Any:
    """A LlamaForCausalLM with random weights in eval mode; EOS disabled so outputs run to max_new_tokens."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{**TINY, **overrides}, bos_token_id=1, eos_token_id=None, pad_token_id=0)
    config._name_or_path = "tiny-random-llama"
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model
