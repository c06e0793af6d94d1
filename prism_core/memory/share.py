"""Ship exported physical handles (file descriptors) to another process over a Unix socket (SCM_RIGHTS)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

MAX_FDS_PER_MESSAGE = 250  # Linux caps SCM_RIGHTS at 253 descriptors per message


def send_handles(sock: socket.socket, fds: Sequence[int], payload: bytes = b"h") -> None:
    """Send descriptors (the receiver gets its own copies; the sender still owns and must close these)."""
    if not payload:
        raise ValueError("payload must be non-empty: a zero-byte message carries no descriptors on a stream")
    for i in range(0, max(len(fds), 1), MAX_FDS_PER_MESSAGE):
        socket.send_fds(sock, [payload], list(fds[i : i + MAX_FDS_PER_MESSAGE]))


def recv_handles(sock: socket.socket, count: int, bufsize: int = 4096) -> tuple[bytes, list[int]]:
    """Receive `count` descriptors (the caller owns them); returns the last payload and the descriptors."""
    fds: list[int] = []
    payload = b""
    while True:
        want = min(MAX_FDS_PER_MESSAGE, count - len(fds))
        msg, got, _flags, _addr = socket.recv_fds(sock, bufsize, max(want, 1))
        if not msg:
            raise ConnectionError("peer closed the socket before sending every handle")
        payload = msg
        fds.extend(got)
        if len(fds) >= count:
            return payload, fds
