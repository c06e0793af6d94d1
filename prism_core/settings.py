"""Every PRISM_* environment variable, in one place (README, "Configuration", lists the same).

CLI flags mirror them: `prism --plugins ... --disable-plugins ... --trace-plugins --log-level ...`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from prism_core.errors import UsageError

ENV_VARS: dict[str, str] = {
    "PRISM_PLUGINS": "comma-separated allow-list of plugin names; only these (and nothing else) are loaded",
    "PRISM_DISABLE_PLUGINS": "comma-separated deny-list of plugin names, applied after the allow-list",
    "PRISM_DISABLE_PLUGIN_AUTOLOAD": "1: load only Prism's built-in plugins, no third-party entry points",
    "PRISM_TRACE_PLUGINS": "1: log every hook call and its result at DEBUG on the 'prism.plugins' logger",
    "PRISM_LOG_LEVEL": "DEBUG, INFO, WARNING (default) or ERROR",
    "PRISM_EXPORT": "export specs for the `prism run` bootstrap (JSON list or comma-separated); set by prism run",
    "PRISM_DEVICE": "device id capture times stages on (default: first real accelerator, else cpu:0)",
    "PRISM_ELASTIC_KV": "1: the KV cache of transformers generate() (or a block count for it), vLLM and SGLang is on "
    "the elastic pool",
    "PRISM_KV_PRIORITY": "broker priority of the elastic KV caches a process registers (default 0, higher wins; "
    "`prism mem limit` changes it live)",
    "PRISM_BROKER_DIR": "folder of the per-device memory-broker ledgers (default /dev/shm)",
    "PRISM_DATA_DIR": "folder of the request traces `prism simulate` and `prism demo` replay (default ../shared/data)",
    "PRISM_DETECT": "1: run the anomaly detector inside the `prism run` child (set by `prism run --detect`)",
    "PRISM_DETECT_MODEL": "latency model file the detector loads at start (default: learn from the warm-up batches)",
    "PRISM_ALERT_SINKS": "comma-separated alert sinks for `prism run --detect`: plugin sink names or webhook:URL",
    "PRISM_DETECT_WARMUP": "decode batches the detector learns from when no model is given (default 1000)",
    "PRISM_DETECT_ESCALATE": "batches captured into an alert's Chrome trace window and diagnosed after it (default 50)",
    "PRISM_DETECT_DEEP": "batches timed per operator (torch.profiler) after each diagnosed alert; 0 turns it off "
    "(default 3)",
    "PRISM_DETECT_CHART": "control chart of `prism run --detect`: point|window[,w=W][,k=K][,run=N][,theta_min=X]"
    "[,theta_max=X] (default window,w=10,k=3)",
    "PRISM_DETECT_OUT": "folder of alert windows (Chrome traces) from `prism run --detect` (default prism-alerts)",
    "PRISM_ENABLE": "1: each vLLM process instruments itself (vllm.general_plugins); exports PRISM_EXPORT, else otlp",
    "PRISM_STAGE_FAULTS": "1: capture puts the stage-delay recorder in front, so cpu.stage_delay works in that process",
}

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def data_dir() -> Path:
    """Where real request traces live: $PRISM_DATA_DIR, else ../shared/data beside the checkout."""
    env = os.environ.get("PRISM_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def elastic_kv() -> str | None:
    """$PRISM_ELASTIC_KV when it turns the elastic KV pool on (anything but empty or 0), else None."""
    value = os.environ.get("PRISM_ELASTIC_KV", "").strip()
    return None if value in ("", "0") else value


def kv_priority() -> int:
    """$PRISM_KV_PRIORITY as an int (default 0)."""
    value = os.environ.get("PRISM_KV_PRIORITY", "").strip() or "0"
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"PRISM_KV_PRIORITY must be an integer, got {value!r}") from None


def _names(value: str | None) -> frozenset[str] | None:
    if value is None or not value.strip():
        return None
    return frozenset(n.strip() for n in value.split(",") if n.strip())


def _flag(name: str, value: str | None) -> bool:
    if value is None or value.strip() == "":
        return False
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}={value!r}: expected 1/0, true/false, yes/no or on/off")


@dataclass(frozen=True, slots=True)
class Settings:
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    autoload: bool = True
    trace: bool = False
    log_level: str = "WARNING"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        level = e.get("PRISM_LOG_LEVEL", "WARNING").strip().upper() or "WARNING"
        if level not in _LEVELS:
            raise UsageError(f"PRISM_LOG_LEVEL={level!r}: expected one of {', '.join(_LEVELS)}")
        return cls(
            allow=_names(e.get("PRISM_PLUGINS")),
            deny=_names(e.get("PRISM_DISABLE_PLUGINS")) or frozenset(),
            autoload=not _flag("PRISM_DISABLE_PLUGIN_AUTOLOAD", e.get("PRISM_DISABLE_PLUGIN_AUTOLOAD")),
            trace=_flag("PRISM_TRACE_PLUGINS", e.get("PRISM_TRACE_PLUGINS")),
            log_level=level,
        )

    def apply_logging(self) -> None:
        logging.basicConfig(format="%(name)s: %(levelname)s: %(message)s")
        logging.getLogger("prism").setLevel(getattr(logging, self.log_level))
