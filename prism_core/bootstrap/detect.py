"""`prism run --detect`: the settings the bootstrap reads from PRISM_DETECT* variables, and the wiring they drive.

`prism run` checks every value before the program starts (`detect_settings` raises UsageError), then passes them
on in the environment; the child builds the same settings again in `attach_from_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prism_core.errors import UsageError

if TYPE_CHECKING:
    from prism_core.capture.session import CaptureSession
    from prism_core.detect.chart import ChartConfig
    from prism_core.detect.online import OnlineDetection
    from prism_core.detect.sinks import AlertSink
    from prism_core.plugins import PluginHost

ENV_DETECT = "PRISM_DETECT"
ENV_MODEL = "PRISM_DETECT_MODEL"
ENV_SINKS = "PRISM_ALERT_SINKS"
ENV_WARMUP = "PRISM_DETECT_WARMUP"
ENV_ESCALATE = "PRISM_DETECT_ESCALATE"
ENV_OUT = "PRISM_DETECT_OUT"
ENV_DEEP = "PRISM_DETECT_DEEP"
ENV_CHART = "PRISM_DETECT_CHART"
ENV_STAGE_FAULTS = "PRISM_STAGE_FAULTS"

DEFAULT_OUT = "prism-alerts"


@dataclass(frozen=True, slots=True)
class DetectSettings:
    model: Path | None
    sinks: tuple[str, ...]
    warmup: int
    escalate: int
    out: Path
    deep: int
    chart: str

    def env(self) -> dict[str, str]:
        """The variables that carry these settings to the `prism run` child."""
        env = {
            ENV_DETECT: "1",
            ENV_SINKS: ",".join(self.sinks),
            ENV_WARMUP: str(self.warmup),
            ENV_ESCALATE: str(self.escalate),
            ENV_OUT: str(self.out),
            ENV_DEEP: str(self.deep),
            ENV_CHART: self.chart,
        }
        if self.model is not None:
            env[ENV_MODEL] = str(self.model)
        return env


def _int(name: str, raw: str | None, default: int, low: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r}: expected a whole number") from None
    if value < low:
        raise UsageError(f"{name}={raw!r}: must be at least {low}")
    return value


def parse_chart(raw: str) -> ChartConfig:
    """`point|window[,w=W][,k=K][,run=N][,theta_min=X][,theta_max=X][,recentre=N][,lone_ratio=X]`; empty gives
    LatencyPrism's window chart."""
    from prism_core.detect.chart import ChartConfig, chart_config

    d = ChartConfig()
    if not raw.strip():
        return d
    mode, *items = (part.strip() for part in raw.split(","))
    values: dict[str, float] = {
        "w": d.window,
        "k": d.k,
        "run": d.run,
        "theta_min": d.theta_min,
        "theta_max": d.theta_max,
        "recentre": d.recentre,
        "lone_ratio": d.lone_ratio,
    }
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in values:
            raise UsageError(f"{ENV_CHART}={raw!r}: {item!r} is not one of {', '.join(k + '=' for k in values)}")
        try:
            values[key] = int(value) if key in ("w", "run", "recentre") else float(value)
        except ValueError:
            raise UsageError(f"{ENV_CHART}={raw!r}: {key} must be a number, got {value!r}") from None
    return chart_config(
        mode,
        int(values["w"]),
        values["k"],
        values["theta_max"],
        theta_min=values["theta_min"],
        run=int(values["run"]),
        recentre=int(values["recentre"]),
        lone_ratio=values["lone_ratio"],
    )


def detect_settings(env: Mapping[str, str], plugin_host: PluginHost) -> DetectSettings:
    """Parse and check: the model file loads, every sink name is known (or `webhook:URL`)."""
    from prism_core.capture.deep import DEFAULT_DEEP_BATCHES
    from prism_core.detect.detector import DEFAULT_ESCALATE_BATCHES, DEFAULT_WARMUP_BATCHES
    from prism_core.detect.model import LatencyModel

    raw_model = env.get(ENV_MODEL, "").strip()
    model = Path(raw_model) if raw_model else None
    if model is not None:
        LatencyModel.load(model)  # refuses a missing file or another version with one line
    sinks = tuple(s.strip() for s in env.get(ENV_SINKS, "log").split(",") if s.strip()) or ("log",)
    known = plugin_host.alert_sinks()
    for name in sinks:
        if name not in known and not name.startswith(("webhook:", "webhook+")):
            raise UsageError(f"unknown alert sink {name!r}: known {', '.join(sorted(known))} or webhook:URL")
    chart = env.get(ENV_CHART, "").strip()
    parse_chart(chart)
    return DetectSettings(
        model=model,
        sinks=sinks,
        warmup=_int(ENV_WARMUP, env.get(ENV_WARMUP), DEFAULT_WARMUP_BATCHES, 10),
        escalate=_int(ENV_ESCALATE, env.get(ENV_ESCALATE), DEFAULT_ESCALATE_BATCHES, 2),
        out=Path(env.get(ENV_OUT, "").strip() or DEFAULT_OUT),
        deep=_int(ENV_DEEP, env.get(ENV_DEEP), DEFAULT_DEEP_BATCHES, 0),
        chart=chart,
    )


def build_sinks(names: tuple[str, ...], plugin_host: PluginHost) -> list[AlertSink]:
    from prism_core.detect.webhook import WebhookSink

    known = plugin_host.alert_sinks()
    return [WebhookSink(name.partition(":")[2]) if name.startswith("webhook:") else known[name] for name in names]


def attach_from_env(session: CaptureSession, env: Mapping[str, str] | None = None) -> OnlineDetection | None:
    """Start online detection on `session` when PRISM_DETECT is on; None when it is off."""
    from prism_core.detect.detector import DetectorConfig
    from prism_core.detect.model import LatencyModel
    from prism_core.detect.online import OnlineDetection
    from prism_core.settings import _flag as flag  # the same 1/0, true/false parsing as every PRISM_* flag

    e = os.environ if env is None else env
    if not flag(ENV_DETECT, e.get(ENV_DETECT)):
        return None
    s = detect_settings(e, session.host)
    config = DetectorConfig(chart=parse_chart(s.chart), warmup_batches=s.warmup, escalate_batches=s.escalate)
    return OnlineDetection(
        session.collector,
        model=LatencyModel.load(s.model) if s.model is not None else None,
        sinks=build_sinks(s.sinks, session.host),
        config=config,
        window_dir=s.out,
        make_exporter=session.host.exporter,
        sampler=session.host.telemetry_sampler(session.timing.device, 0.25),
        deep=session.operator_capture(s.deep) if s.deep else None,
    )
