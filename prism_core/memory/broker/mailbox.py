"""Moving physical pages between model processes instead of freeing and re-creating them.

When the broker asks an idle model to give pages back to a waiting one, the idle model sends the exported
handles of those pages (file descriptors) to the waiting model's mailbox, a Unix socket in the abstract
namespace, *before* it gives the bytes back in the ledger; the waiting model, once granted, maps those
handles instead of creating fresh pages. The kernel (or driver) then neither frees the idle model's memory
nor zeroes new memory for the busy one; the idle model unmaps its side afterwards, off the busy model's
critical path. Sizes must match (the payload says the handle size); anything a mailbox cannot use it closes.

What moves is memory, with its contents: the receiving model overwrites blocks before reading them (a KV
block is written before attention reads it), as it does with any reused block of its own.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Sequence

from prism_core.errors import UsageError
from prism_core.memory.share import recv_handles, send_handles
from prism_core.memory.vmm import VmmBackend, VmmError

HEADER = 32  # bytes: "<handle size> <count>", space-padded


def address(ledger_path: str, index: int, pid: int) -> str:
    """The abstract socket name of slot `index` (owned by `pid`) of one ledger."""
    digest = hashlib.sha1(ledger_path.encode()).hexdigest()[:16]
    return f"\0prism-kv-{digest}-{index}-{pid}"


class Mailbox:
    """A model's inbox for donated handles. Not thread-safe: its owner calls it under the cache lock."""

    def __init__(self, ledger_path: str, index: int) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._sock.bind(address(ledger_path, index, os.getpid()))
        self._sock.listen(16)
        self._sock.setblocking(False)

    def drain(self, backend: VmmBackend, size: int, want: int) -> list[int]:
        """Import up to `want` donated handles of `size` bytes; close every other descriptor that arrived."""
        out: list[int] = []
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return out
            with conn:
                conn.settimeout(1.0)  # the donor sent everything before giving the bytes back
                try:
                    donated, count = _header(conn)
                    _, fds = recv_handles(conn, count) if count else (b"", [])
                except (OSError, ValueError, ConnectionError):
                    continue  # a donor that died mid-send: nothing usable arrived
            for fd in fds:
                if len(out) < want and donated == size:
                    try:
                        out.append(backend.import_(fd))
                        continue
                    except (UsageError, VmmError):  # not a handle this backend takes: drop it
                        pass
                os.close(fd)

    def close(self) -> None:
        self._sock.close()


def _header(conn: socket.socket) -> tuple[int, int]:
    raw = b""
    while len(raw) < HEADER:  # exactly the header: the descriptors ride on the bytes after it
        chunk = conn.recv(HEADER - len(raw))
        if not chunk:
            raise ConnectionError("donor closed before its header")
        raw += chunk
    size, count = raw.split()
    return int(size), int(count)


def donate(ledger_path: str, index: int, pid: int, size: int, fds: Sequence[int]) -> bool:
    """Send `fds` (handles of `size` bytes) to slot `index`'s mailbox; False when nobody listens there.
    The caller still owns `fds` and closes them."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(1.0)
            sock.connect(address(ledger_path, index, pid))
            sock.sendall(f"{size} {len(fds)}".encode().ljust(HEADER))
            send_handles(sock, fds)
    except OSError:
        return False
    return True
