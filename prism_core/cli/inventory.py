"""`prism plugins` and `prism devices`: what is installed and what hardware it found."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from prism_core.cli.output import console, print_json
from prism_core.plugins import host

TELEMETRY_WINDOW_S = 0.25  # utilisation is a rate: measure it over a short window


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plugins", help="plugins, their hooks, availability and reasons")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plugins)

    d = sub.add_parser("devices", help="devices of every accelerator plugin, or why none")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.add_argument("--telemetry", action="store_true", help="also read each device's telemetry once")
    d.set_defaults(func=cmd_devices)


def cmd_plugins(args: argparse.Namespace) -> int:
    infos = host().plugin_infos()
    if args.json:
        print_json(infos)
        return 0
    table = Table("plugin", "distribution", "status", "hooks", title="Prism plugins")
    for i in infos:
        dist = f"{i.distribution} {i.version}" if i.distribution else "(registered in code)"
        status = i.status + (f": {i.reason}" if i.reason else "")
        table.add_row(i.name, dist, status, ", ".join(h.removeprefix("prism_") for h in i.hooks))
    console.print(table)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    h = host()
    probes = h.probes()
    devices = [d for p in probes for d in p.devices]
    unavailable = [p.unavailable for p in probes if p.unavailable]
    telemetry = {}
    if args.telemetry:
        samplers = {d.id: s for d in devices if (s := h.telemetry_sampler(d, TELEMETRY_WINDOW_S))}
        time.sleep(TELEMETRY_WINDOW_S)
        telemetry = {dev: s.sample() for dev, s in samplers.items()}
        for s in samplers.values():
            s.close()
    if args.json:
        out: dict[str, object] = {"devices": devices, "unavailable": unavailable}
        if args.telemetry:
            out["telemetry"] = telemetry
        print_json(out)
        return 0
    table = Table("device", "name", "memory", "facts", title="Devices")
    for d in devices:
        facts = ", ".join(f"{k}={v}" for k, v in d.properties.items())
        label = d.id + (" (simulated)" if d.simulated else "")
        table.add_row(label, d.name, f"{d.memory_total_bytes / 2**30:.1f} GiB", facts)
    console.print(table)
    for u in unavailable:
        console.print(f"[yellow]unavailable[/] {u}")
    for dev, sample in telemetry.items():
        values = ", ".join(f"{k}={v:.3g}" for k, v in sample.values.items())
        console.print(f"{dev} telemetry: {values}")
        for k, why in sample.unreadable.items():
            console.print(f"{dev} [yellow]unreadable[/] {k}: {why}")
    return 0
