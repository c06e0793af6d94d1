"""The `prism` command. Each sub-command lives in its own module with a `register(subparsers)` function."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from prism_core import __version__
from prism_core.errors import UsageError
from prism_core.settings import Settings

# Sub-command modules, in the order `prism --help` lists them.
COMMANDS = (
    "prism_core.cli.inventory",
    "prism_core.cli.run",
    "prism_core.cli.hook",
    "prism_core.cli.attach",
    "prism_core.cli.top",
    "prism_core.cli.demo",
    "prism_core.cli.mem",
    "prism_core.cli.bench",
    "prism_core.cli.detect",
    "prism_core.cli.diagnose",
    "prism_core.cli.faults",
    "prism_core.cli.dataset",
    "prism_core.cli.simulate",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prism", description="See every batch, share every accelerator.")
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    parser.add_argument("--plugins", metavar="A,B", help="load only these plugins (PRISM_PLUGINS)")
    parser.add_argument("--disable-plugins", metavar="A,B", help="do not load these plugins (PRISM_DISABLE_PLUGINS)")
    parser.add_argument("--trace-plugins", action="store_true", help="log every hook call (PRISM_TRACE_PLUGINS)")
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR (PRISM_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _apply_flags(args: argparse.Namespace) -> None:
    # Flags become the environment variables they mirror, so child processes (`prism run`) inherit them.
    for flag, var in (
        ("plugins", "PRISM_PLUGINS"),
        ("disable_plugins", "PRISM_DISABLE_PLUGINS"),
        ("log_level", "PRISM_LOG_LEVEL"),
    ):
        if getattr(args, flag):
            os.environ[var] = getattr(args, flag)
    if args.trace_plugins:
        os.environ["PRISM_TRACE_PLUGINS"] = "1"
    Settings.from_env().apply_logging()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _apply_flags(args)
        code: int = args.func(args)
    except UsageError as exc:
        sys.stderr.write(f"prism: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return code
