"""Faults that change a device setting (a clock lock, a performance level) and must always put it back.

`SettingFault` owns the restore guarantees, so each vendor writes only `_apply` and `_restore`:
- a start that fails part-way restores before it raises, so a failed start leaves nothing changed;
- an exit guard (atexit) restores if the process ends normally or by KeyboardInterrupt while the fault is on
  (SIGKILL and an unhandled SIGTERM skip it: then use the vendor's reset, e.g. `nvidia-smi -rgc`);
- `stop` restores and is idempotent; if the restore itself fails the fault stays active and `stop` raises, so a
  caller can retry instead of being told the device is back to normal when it is not.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from abc import ABC, abstractmethod

from prism_core.faults.base import check_intensity

log = logging.getLogger("prism.faults")


class SettingFault(ABC):
    name: str
    resource: str
    description: str

    def __init__(self) -> None:
        self._active = False
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._active

    @abstractmethod
    def _apply(self, intensity: float) -> None:
        """Change the setting. May raise at any point; `_restore` runs after a failure."""

    @abstractmethod
    def _restore(self) -> None:
        """Put the setting back. Must be safe after a partial or failed `_apply`."""

    def start(self, intensity: float) -> int:
        check_intensity(intensity, self.name)
        with self._lock:
            if self._active:
                raise RuntimeError(f"{self.name} is already running; stop it first")
            atexit.register(self._restore_at_exit)
            onset = time.time_ns()
            try:
                self._apply(intensity)
            except BaseException:
                try:
                    self._restore()
                except Exception as exc:  # the apply error is the one to report; say the restore failed too
                    log.error("%s: restoring after a failed start also failed: %s", self.name, exc)
                else:
                    atexit.unregister(self._restore_at_exit)
                raise
            self._active = True
            return onset

    def stop(self) -> int:
        with self._lock:
            if self._active:
                self._restore()  # raises: stays active, the exit guard stays armed
                self._active = False
                atexit.unregister(self._restore_at_exit)
            return time.time_ns()

    def _restore_at_exit(self) -> None:
        try:
            self._restore()
        except Exception as exc:  # at exit, report and carry on with the other handlers
            log.error("%s: restore at exit failed: %s", self.name, exc)
