"""`prism run [--export SPEC]... [--detect ...] -- CMD...`: run a program with capture installed at import time.

Bad specs are refused before the program starts (one line, exit 2). An OTLP endpoint that does not answer is
one warning line; the program still runs. Then this process becomes the program (exec), so its exit code,
signals and stdio are the program's own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys

from prism_core.bootstrap import ENV_EXPORT, SITE_DIR
from prism_core.errors import UsageError
from prism_core.export import ExportSpec
from prism_core.export.otel import endpoint_address
from prism_core.plugins import host

CONNECT_TIMEOUT_S = 0.5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run an LLM program instrumented, no code change")
    add_export_option(
        p, "otlp | otlp+grpc://HOST:PORT | otlp+http://HOST:PORT | jsonl:PATH | chrome:PATH | console (repeatable)"
    )
    p.add_argument("--detect", action="store_true", help="run the anomaly detector on every batch (alerts, diagnosis)")
    p.add_argument("--model", metavar="M.json", help="with --detect: a fitted latency model (default: learn at start)")
    p.add_argument(
        "--alert-sink", action="append", default=[], metavar="NAME", help="with --detect: log (default) | webhook:URL"
    )
    p.add_argument("--warmup", type=int, metavar="N", help="with --detect, no --model: batches to learn from (1000)")
    p.add_argument("--escalate", type=int, metavar="N", help="with --detect: batches per alert window (default 50)")
    p.add_argument(
        "--deep", type=int, metavar="N", help="with --detect: operator-timed batches after a diagnosis (3; 0 off)"
    )
    p.add_argument("--alerts-out", metavar="DIR", help="with --detect: folder of alert windows (prism-alerts)")
    p.add_argument(
        "--chart",
        metavar="SPEC",
        help="with --detect: point|window[,w=W][,k=K][,run=N][,theta_min=X][,theta_max=X] (default window,w=10,k=3)",
    )
    p.add_argument(
        "--stage-faults", action="store_true", help="let cpu.stage_delay act inside the program (testing only)"
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the program and its arguments")
    p.set_defaults(func=cmd_run)


def add_export_option(p: argparse.ArgumentParser, help_text: str) -> None:
    """The repeatable `--export SPEC` of every command that sends records somewhere."""
    p.add_argument("--export", action="append", default=[], metavar="SPEC", help=help_text)


def check_specs(specs: list[str]) -> list[ExportSpec]:
    """Build (then close) each exporter so a bad spec fails here, before the program runs."""
    parsed = [ExportSpec.parse(s) for s in specs]
    h = host()
    for spec in parsed:
        h.exporter(spec).close()
    return parsed


def unreachable(spec: ExportSpec) -> str | None:
    """Why the spec's OTLP endpoint does not accept a connection now, or None."""
    if not spec.scheme.startswith("otlp") or not spec.target:
        return None
    address = endpoint_address(spec)
    if address is None:
        return None
    try:
        socket.create_connection(address, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def detect_env(args: argparse.Namespace) -> dict[str, str]:
    """PRISM_DETECT* variables for the child, checked here (a bad model or sink fails before the program runs)."""
    from prism_core.bootstrap.detect import (
        ENV_CHART,
        ENV_DEEP,
        ENV_ESCALATE,
        ENV_MODEL,
        ENV_OUT,
        ENV_SINKS,
        ENV_STAGE_FAULTS,
        ENV_WARMUP,
        detect_settings,
    )

    env = {ENV_STAGE_FAULTS: "1"} if args.stage_faults else {}
    if not args.detect:
        given_any = args.model or args.alert_sink or args.warmup or args.escalate or args.alerts_out or args.chart
        if given_any or args.deep is not None:
            raise UsageError(
                "--model, --alert-sink, --warmup, --escalate, --deep, --chart and --alerts-out need --detect"
            )
        return env
    given = {
        ENV_MODEL: args.model,
        ENV_SINKS: ",".join(args.alert_sink) or None,
        ENV_WARMUP: None if args.warmup is None else str(args.warmup),
        ENV_ESCALATE: None if args.escalate is None else str(args.escalate),
        ENV_OUT: args.alerts_out,
        ENV_DEEP: None if args.deep is None else str(args.deep),
        ENV_CHART: args.chart,
    }
    settings = detect_settings({k: v for k, v in given.items() if v is not None}, host())
    return {**env, **settings.env()}


def child_env(
    specs: list[ExportSpec], base: dict[str, str] | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(extra or {})
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SITE_DIR) + (os.pathsep + path if path else "")
    env[ENV_EXPORT] = json.dumps([str(s) for s in specs])
    return env


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("nothing to run: prism run [--export SPEC]... -- CMD [ARGS...]")
    specs = check_specs(args.export)
    extra = detect_env(args)
    for spec in specs:
        why = unreachable(spec)
        if why:
            where = f"{spec.scheme}://{spec.target}"
            sys.stderr.write(
                f"prism: warning: {where} does not answer ({why}); the program runs, those records are lost\n"
            )
    program = shutil.which(command[0])
    if program is None:
        sys.stderr.write(f"prism: {command[0]}: command not found\n")
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(program, command, child_env(specs, extra=extra))
