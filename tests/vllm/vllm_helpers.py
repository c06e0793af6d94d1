"""Paths and the process environment the vLLM tests share (a module, not conftest: conftest names repeat)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"


def vllm_env(**extra: str) -> dict[str, str]:
    """Environment for a vLLM process here: offline, a small CPU KV cache, no Prism unless asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRISM_") and k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env
