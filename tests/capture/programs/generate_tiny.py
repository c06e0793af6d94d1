"""A user's program: greedy generation on a tiny random Llama; prints the tokens; exits with argv[1] (default 0)."""

import sys

import torch

from prism_plugins.frameworks.transformers.tiny import tiny_llama

model = tiny_llama(hidden_size=64, intermediate_size=128, num_hidden_layers=2, vocab_size=512)
ids = torch.randint(3, 512, (2, 8), generator=torch.Generator().manual_seed(0))
out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)
print(out.tolist())
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
