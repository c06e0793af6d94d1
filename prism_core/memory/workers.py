"""A model process for tests and benchmarks: an ElasticKVCache in its own process, driven over a pipe.

Real processes are what the broker arbitrates between; this keeps the scenarios (contention, reclaim,
kill -9) short to write. Started with the spawn method so the child shares nothing but the ledger file.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from prism_core.memory.broker import Broker
from prism_core.memory.cache import ElasticKVCache
from prism_core.memory.results import CannotSchedule
from prism_core.memory.spec import KvSpec


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """What a model process builds: its cache geometry and its terms with the broker."""

    name: str
    directory: str
    capacity: int
    spec: KvSpec
    num_blocks: int
    page_size: int
    min_bytes: int = 0
    max_bytes: int | None = None
    priority: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu:0"


def _serve(config: ModelConfig, conn: Connection) -> None:
    from prism_core.plugins import host

    device = host().device(config.device)
    backend = host().vmm_backend(device)
    if backend is None:
        raise SystemExit(f"no VMM backend for {config.device}")
    broker = Broker(config.device, config.capacity, Path(config.directory))
    member = broker.register(
        config.name, min_bytes=config.min_bytes, max_bytes=config.max_bytes, priority=config.priority
    )
    cache = ElasticKVCache(
        config.spec,
        config.num_blocks,
        backend=backend,
        page_size=config.page_size,
        member=member,
        name=config.name,
        **config.options,
    )
    held: list[Any] = []
    conn.send(("ready", os.getpid()))
    while True:
        cmd, arg = conn.recv()
        if cmd == "alloc":
            t0 = time.perf_counter()
            got = cache.alloc(arg)
            dt = time.perf_counter() - t0
            if isinstance(got, CannotSchedule):
                conn.send(("refused", got.reason, dt))
            else:
                held.append(got)
                conn.send(("ok", int(got.size), dt))
        elif cmd == "free":
            for ids in held:
                cache.free(ids)
            held.clear()
            conn.send(("ok", 0, 0.0))
        elif cmd == "touch":  # make the mapped pages resident, as a model that served traffic has them
            for page in cache.pages.mapped_ids():
                for addr in cache.pages.addresses(page):
                    ctypes.memset(addr, 1, cache.pages.page_size)
            conn.send(("ok", 0, 0.0))
        elif cmd == "fault":  # write one byte per OS page of every mapped page: the cost of first use
            t0 = time.perf_counter()
            step = os.sysconf("SC_PAGE_SIZE")
            for page in cache.pages.mapped_ids():
                for addr in cache.pages.addresses(page):
                    raw = (ctypes.c_uint8 * cache.pages.page_size).from_address(addr)
                    np.ctypeslib.as_array(raw)[::step] = 2
            conn.send(("ok", 0, time.perf_counter() - t0))
        elif cmd == "peek":  # first byte of every mapped page id's first buffer: whose memory is this?
            first = {
                p: ctypes.c_uint8.from_address(cache.pages.addresses(p)[0]).value for p in cache.pages.mapped_ids()
            }
            conn.send(("ok", first, 0.0))
        elif cmd == "trim":
            conn.send(("ok", cache.trim(), 0.0))
        elif cmd == "usage":
            conn.send(("ok", cache.usage(), 0.0))
        elif cmd == "exit":
            cache.close()
            backend.close()
            member.close()
            broker.close()
            conn.send(("ok", 0, 0.0))
            return


class ModelProcess:
    """The parent's handle on a model process."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(config, child), name=f"prism-model-{config.name}", daemon=True
        )
        self.process.start()
        child.close()
        status, self.pid = self._recv(60)
        assert status == "ready"

    def _recv(self, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise TimeoutError(f"model process {self.config.name} did not answer in {timeout} s")
        return self._conn.recv()

    def call(self, cmd: str, arg: Any = None, timeout: float = 60) -> tuple[str, Any, float]:
        self._conn.send((cmd, arg))
        result: tuple[str, Any, float] = self._recv(timeout)
        return result

    def alloc(self, blocks: int) -> tuple[str, Any, float]:
        return self.call("alloc", blocks)

    def free(self) -> None:
        self.call("free")

    def held_bytes(self) -> int:
        held: int = self.call("usage")[1].held_bytes
        return held

    def stop(self) -> None:
        if self.process.is_alive():
            self.call("exit")
        self.process.join(30)
        self._conn.close()

    def kill(self) -> None:
        """kill -9: no cleanup in the child; the broker must recover its pages."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.join(30)
        self._conn.close()
