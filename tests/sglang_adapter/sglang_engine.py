"""Run a real SGLang engine under `prism run` or PRISM_ENABLE (`gpu` tests only): SGLang starts its scheduler in a
spawned process, which the bootstrap instruments as it imports sglang, so records come from the scheduler as in
production.

The model is a tiny random Llama saved here with an offline tokenizer: GPU machines may have no network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest

from prism_core.testing.enable import environ_without_prism, hooked_pythonpath
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


def generate(
    tmp: Path, model_dir: Path, max_new_tokens: int, via: Literal["run", "enable", "none"] = "run", **env: str
) -> tuple[list[str], str]:
    """Greedy texts of SCRIPT's prompts from `sglang.Engine`, and the run's stderr. `via="run"`: under `prism run
    --export jsonl:tmp/records.jsonl`; `"enable"`: the same command unchanged, with PRISM_ENABLE=1 and the hook
    `prism hook install` writes (in a site folder under `tmp`); `"none"`: without Prism."""
    records = f"jsonl:{tmp / 'records.jsonl'}"
    command = [sys.executable, "-c", SCRIPT, str(model_dir), str(max_new_tokens)]
    base = environ_without_prism()
    if via == "run":
        command = [str(Path(sys.executable).parent / "prism"), "run", "--export", records, "--", *command]
    elif via == "enable":
        base |= {**hooked_pythonpath(tmp / "hook"), "PRISM_ENABLE": "1", "PRISM_EXPORT": records}
    done = subprocess.run(command, env={**base, **env}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1])), done.stderr
