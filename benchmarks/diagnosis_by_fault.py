"""What diagnosis names for each fault of a labelled set: the top suspects, fault by fault.

    .venv/bin/python benchmarks/diagnosis_by_fault.py DIR [DIR ...] [--before 200] [--json]

DIR is a `prism dataset make` folder (batches.jsonl with stage timings, faults.jsonl with the ground truth, and
telemetry.jsonl where the set has it). For each fault the abnormal side is the batches that started inside it, the
normal side the last `--before` batches before its onset that overlap no fault or the SETTLE_S after one (a
fault's tail still slows the engine, see docs/detect.md). Without telemetry (sets made before it was recorded) the
suspects are stages (or stage parts) alone. A fault with too few batches inside it to diagnose (a GC storm can
stall the engine for its whole length) is listed as skipped. Prints one line per fault and a count of the top
suspects.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prism_core.diagnose import diagnose, evidence_of, load_evidence
from prism_core.errors import UsageError
from prism_core.faults.timeline import FaultTimeline

SETTLE_S = 2.0


@dataclass
class FaultDiagnosis:
    set: str
    fault: str
    intensity: float
    batches: int
    skipped: str = ""
    mean_ms: tuple[float, float] = (0.0, 0.0)
    suspects: list[dict[str, object]] = field(default_factory=list)

    def line(self) -> str:
        head = f"{self.set} {self.fault} {self.intensity} ({self.batches} batches)"
        if self.skipped:
            return f"{head}: skipped, {self.skipped}"
        sus = "; ".join(
            f"{s['where']} x {s['resource']} {s['ms_normal']} -> {s['ms_abnormal']} ms" for s in self.suspects[:2]
        )
        return f"{head}: {self.mean_ms[0]:.2f} -> {self.mean_ms[1]:.2f} ms; {sus}"


def by_fault(folder: Path, before: int) -> list[FaultDiagnosis]:
    files = [folder / "batches.jsonl", *[p for p in [folder / "telemetry.jsonl"] if p.is_file()]]
    evidence = load_evidence(files)
    batches, telemetry = evidence.batches, evidence.telemetry
    faults = FaultTimeline.read(folder / "faults.jsonl")
    settle = int(SETTLE_S * 1e9)
    clear = [b for b in batches if not any(f.overlaps(b.start_ns - settle, b.start_ns + b.duration_ns) for f in faults)]
    out = []
    for f in faults:
        normal = [b for b in clear if b.start_ns + b.duration_ns <= f.onset_ns][-before:]
        abnormal = [b for b in batches if f.covers(b.start_ns)]
        row = FaultDiagnosis(str(folder), f.name, f.intensity, len(abnormal))
        try:
            d = diagnose(evidence_of(normal, telemetry), evidence_of(abnormal, telemetry))
        except UsageError as exc:
            row.skipped = str(exc)
        else:
            row.mean_ms = (d.mean_ms_normal, d.mean_ms_abnormal)
            row.suspects = [
                {
                    "where": s.where,
                    "resource": s.resource,
                    "significant": s.significant,
                    "ms_normal": round(s.stage_ms_normal, 2),
                    "ms_abnormal": round(s.stage_ms_abnormal, 2),
                }
                for s in d.suspects
            ]
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", type=Path, help="prism dataset make folders")
    ap.add_argument("--before", type=int, default=200, help="normal batches before each fault (default 200)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for d in args.dirs:
        if not (d / "batches.jsonl").is_file() or not (d / "faults.jsonl").is_file():
            ap.error(f"{d} has no batches.jsonl and faults.jsonl: make it with prism dataset make")
    rows = [row for d in args.dirs for row in by_fault(d, args.before)]
    tops = Counter(str(r.suspects[0]["where"]) for r in rows if r.suspects)
    if args.json:
        print(json.dumps({"faults": [asdict(r) for r in rows], "top_suspects": dict(tops)}, indent=2))
        return
    for r in rows:
        print(r.line())
    print(f"top suspect over {sum(tops.values())} diagnosed faults: {dict(tops.most_common())}")


if __name__ == "__main__":
    main()
