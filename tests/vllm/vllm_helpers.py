"""Paths and the process environment the vLLM tests share (a module, not conftest: conftest names repeat)."""

from __future__ import annotations

from pathlib import Path

from prism_core.testing.enable import environ_without_prism

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"


def vllm_env(**extra: str) -> dict[str, str]:
    """Environment for a vLLM process here: offline, a small CPU KV cache, no Prism unless asked."""
    env = environ_without_prism()
    env.pop("PYTHONPATH", None)
    env.update(HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1", VLLM_NO_USAGE_STATS="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env
