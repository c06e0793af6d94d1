"""Webhook alert sink: HTTP POST of the alert's JSON, retried with back-off on a background thread.

`send` only puts the alert on a bounded queue, so a slow or dead endpoint never blocks the engine; when the
queue is full the alert is dropped and counted (the log line says so) rather than making the collector wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlparse

from prism_core.errors import UsageError
from prism_core.models import Alert

log = logging.getLogger("prism.alerts")


@dataclass(slots=True)
class WebhookStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    attempts: int = 0


class WebhookSink:
    """POST each alert to `url` as JSON; up to `retries` more tries on network errors, 5xx and 429."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        queue_size: int = 1000,
        headers: dict[str, str] | None = None,
    ) -> None:
        if urlparse(url).scheme not in ("http", "https"):
            raise UsageError(f"webhook URL must be http:// or https://, got {url!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.stats = WebhookStats()
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def send(self, alert: Alert) -> None:
        if self._closed:
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.stats.dropped += 1
            log.warning("webhook %s: queue full, alert dropped (%d so far)", self.url, self.stats.dropped)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued alert was delivered or given up; True if the queue drained in time."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to `timeout_s`), then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="prism-webhook", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is None:
                    return
                self._deliver(alert)
            finally:
                self._queue.task_done()

    def _deliver(self, alert: Alert) -> None:
        body = alert.model_dump_json().encode()
        why = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.stats.attempts += 1
            req = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    resp.read()
                self.stats.sent += 1
                return
            except urllib.error.HTTPError as exc:
                why = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:  # the endpoint refuses this alert: retrying will not help
                    break
            except (urllib.error.URLError, OSError) as exc:
                why = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        self.stats.failed += 1
        log.warning("webhook %s: alert not delivered after %d attempt(s): %s", self.url, attempt + 1, why)
