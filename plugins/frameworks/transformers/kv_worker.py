"""A real transformers model in its own process, its KV cache on the elastic pool, driven over a pipe.

Tests and `prism bench memory` use it to put two (or more) model processes on one broker budget. Started
with the spawn method, so a child shares nothing with its parent but the ledger file.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """One model process: the tiny Llama (seeded), its pool terms with the broker, where the ledger lives."""

    name: str
    broker_dir: str
    num_blocks: int = 512
    seed: int = 0
    priority: int = 0
    min_bytes: int = 0
    elastic: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # ElasticKVCache keywords


def prompt(rows: int, length: int, seed: int = 1) -> Any:
    """The prompt batch the workers and their references share."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randint(2, 4096, (rows, length), generator=gen)


def _serve(config: EngineConfig, conn: Connection) -> None:
    import torch

    from prism_plugins.frameworks.transformers.kv import PagedGenerator, PagedKvStore, paged_cache
    from prism_plugins.frameworks.transformers.tiny import tiny_llama

    torch.set_num_threads(1)
    model = tiny_llama(config.seed)
    if config.elastic:
        options = {"name": config.name, "priority": config.priority, "min_bytes": config.min_bytes}
        options["broker_dir"] = Path(config.broker_dir)
        store = PagedKvStore.elastic(model, config.num_blocks, **options, **config.options)
    else:
        store = PagedKvStore.static(model, config.num_blocks)
    engine = PagedGenerator(model, store)
    held: Any = None
    conn.send(("ready", os.getpid()))
    while True:
        cmd, arg = conn.recv()
        if cmd == "generate":  # arg: (rows, prompt length, new tokens)
            rows, length, new = arg
            t0 = time.perf_counter()
            out = engine.generate(prompt(rows, length), max_new_tokens=new, do_sample=False)
            conn.send(("ok", (out.tolist(), engine.last.waits, engine.last.preemptions), time.perf_counter() - t0))
        elif cmd == "hold":  # keep a prefill's blocks until "release", as a request in flight does
            rows, length = arg
            held = paged_cache(store)
            with torch.inference_mode():
                model(prompt(rows, length), past_key_values=held, use_cache=True)
            conn.send(("ok", held.get_seq_length(), 0.0))
        elif cmd == "release":
            if held is not None:
                held.prism_release()
                held = None
            conn.send(("ok", store.cache.trim() if store.cache is not None else 0, 0.0))
        elif cmd == "usage":
            conn.send(("ok", store.cache.usage() if store.cache is not None else None, 0.0))
        elif cmd == "exit":
            if held is not None:
                held.prism_release()
            store.close()
            conn.send(("ok", 0, 0.0))
            return


class EngineProcess:
    """The parent's handle on an engine process."""

    def __init__(self, config: EngineConfig, timeout: float = 120) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.config = config
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(config, child), name=f"prism-engine-{config.name}")
        self.process.daemon = True
        self.process.start()
        child.close()
        status, self.pid = self._recv(timeout)
        assert status == "ready"

    def _recv(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"engine process {self.config.name} did not answer in {timeout} s")
        return self._conn.recv()

    def send(self, cmd: str, arg: Any = None) -> None:
        self._conn.send((cmd, arg))

    def result(self, timeout: float = 120) -> tuple[str, Any, float]:
        answer: tuple[str, Any, float] = self._recv(timeout)
        return answer

    def call(self, cmd: str, arg: Any = None, timeout: float = 120) -> tuple[str, Any, float]:
        self.send(cmd, arg)
        return self.result(timeout)

    def stop(self) -> None:
        if self.process.is_alive():
            self.call("exit")
        self.process.join(30)
        self._conn.close()
