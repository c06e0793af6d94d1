"""Read `npu-smi info`, the CLI over Huawei's DCMI, for what pyACL does not give: power, temperature, HBM.

The summary table has, per NPU, one row with the NPU id, name, health and `Power(W) Temp(C) Hugepages-Usage(page)`
and then one row per chip with chip id, bus id and `AICore(%) Memory-Usage(MB) HBM-Usage(MB)`; the column names
are read from the table's two header rows, so parts without HBM or with other columns parse the same way. "a / b"
cells are (used, total). Chips are numbered in table order, which is the ACL device order when
ASCEND_RT_VISIBLE_DEVICES is not set. Parsing follows the documented layout; it has not met a real npu-smi yet.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from prism_core.capture.readings import Unreadable

TIMEOUT_S = 5.0
_SLASH = re.compile(r"\s*/\s*")
_COLUMNS = re.compile(r"\s{2,}")

Chip = dict[str, str]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _named(header: str, cell: str) -> dict[str, str]:
    names = [n for n in _COLUMNS.split(header.strip()) if n]
    values = _SLASH.sub("/", cell.strip()).split()
    return dict(zip(names, values, strict=False))


def parse_info(text: str) -> list[Chip]:
    """Chips in table order, each a dict of the table's column names to their text values."""
    npu_header = chip_header = None
    chips: list[Chip] = []
    npu: Chip | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if len(cells) < 3:
            continue
        if "Process" in line:  # the process table that follows the summary
            break
        if "Power(W)" in cells[2]:
            npu_header = cells[2]
            continue
        if "AICore" in cells[2] or "Memory-Usage" in cells[2]:
            chip_header = cells[2]
            continue
        if npu_header is None or chip_header is None:
            continue
        first = cells[0].split()
        if len(first) >= 2:  # "<npu id> <name>": an NPU row
            npu = {"npu": first[0], "name": " ".join(first[1:]), "health": cells[1], **_named(npu_header, cells[2])}
        elif len(first) == 1 and npu is not None:  # "<chip id>": a chip of the NPU above
            chips.append({**npu, "chip": first[0], "bus_id": cells[1], **_named(chip_header, cells[2])})
    return chips


def run_info() -> str:
    exe = shutil.which("npu-smi")
    if exe is None:
        raise Unreadable("npu-smi is not on PATH (it ships with the Ascend driver)")
    try:
        done = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unreadable(f"npu-smi info: {exc}") from exc
    if done.returncode != 0:
        raise Unreadable(f"npu-smi info exited {done.returncode}: {done.stderr.strip()[:200]}")
    return done.stdout


def number(chip: Chip, column: str) -> float:
    text = chip.get(column)
    if text is None:
        raise Unreadable(f"npu-smi shows no {column} column")
    try:
        return float(text)
    except ValueError:
        raise Unreadable(f"npu-smi {column} is {text!r}") from None


def used_total(chip: Chip, column: str) -> tuple[float, float]:
    text = chip.get(column)
    if text is None or "/" not in text:
        raise Unreadable(f"npu-smi shows no used / total {column} column")
    used, _, total = text.partition("/")
    try:
        return float(used), float(total)
    except ValueError:
        raise Unreadable(f"npu-smi {column} is {text!r}") from None
