"""Run a real SGLang engine under `prism run` (`gpu` tests only): SGLang starts its scheduler in a spawned process,
which the bootstrap instruments as it imports sglang, so records come from the scheduler as in production.

The model is a tiny random Llama saved here with an offline tokenizer: GPU machines may have no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from prism_plugins.frameworks.sglang.adapter import installed_version

SCRIPT = textwrap.dedent(
    """
    import json, sys, sglang
    engine = sglang.Engine(model_path=sys.argv[1], mem_fraction_static=0.2, disable_cuda_graph=True, random_seed=0)
    prompts = ["the quick brown fox", "a server batches requests", "latency per stage", "time"]
    out = engine.generate(prompts, {"max_new_tokens": int(sys.argv[2]), "temperature": 0, "ignore_eos": True})
    print(json.dumps([o["text"] for o in out]))
    engine.shutdown()
    """
)


def model(tmp: Path) -> Path:
    if installed_version() is None:
        pytest.skip("SGLang is not installed (it needs CUDA)")
    from prism_plugins.frameworks.transformers.tiny import save_tiny_llama

    return save_tiny_llama(tmp / "model")


def generate(tmp: Path, model_dir: Path, max_new_tokens: int, **env: str) -> tuple[list[str], str]:
    """Greedy texts of SCRIPT's prompts from `sglang.Engine` under `prism run --export jsonl:tmp/records.jsonl`;
    and the run's stderr."""
    prism = [str(Path(sys.executable).parent / "prism"), "run", "--export", f"jsonl:{tmp / 'records.jsonl'}", "--"]
    command = [*prism, sys.executable, "-c", SCRIPT, str(model_dir), str(max_new_tokens)]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1])), done.stderr
