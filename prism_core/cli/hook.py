"""`prism hook install|remove|status`: the start-up hook that makes `PRISM_ENABLE=1` work for any Python program
of this environment (prism_core.bootstrap.enable), without `prism run`."""

from __future__ import annotations

import argparse
from pathlib import Path

from prism_core.bootstrap.enable import PTH_NAME, install, installed_at, remove, site_dir
from prism_core.cli.output import console


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "hook", help="install the start-up hook: PRISM_ENABLE=1 then instruments any program of this environment"
    )
    p.add_argument("action", choices=("install", "remove", "status"))
    p.add_argument("--site", type=Path, help="site-packages folder to act on (default: this interpreter's)")
    p.set_defaults(func=cmd_hook)


def cmd_hook(args: argparse.Namespace) -> int:
    site = args.site or site_dir()
    if args.action == "install":
        path = install(site)
        console.print(f"installed {path}: PRISM_ENABLE=1 now instruments any Python program run from this environment")
    elif args.action == "remove":
        gone = remove(site)
        console.print(f"removed {gone}" if gone else f"no hook in {site}")
    elif installed_at(site):
        console.print(f"installed: {site / PTH_NAME}")
    elif (site / PTH_NAME).exists():
        console.print(f"outdated: {site / PTH_NAME} is another version's (run `prism hook install`)")
    else:
        console.print(f"not installed in {site}")
    return 0
