"""`prism simulate --plot PNG`: SLO attainment against load, one line per policy."""

from __future__ import annotations

from pathlib import Path

from prism_core.errors import UsageError


def plot_attainment(curves: dict[str, list[tuple[float, float]]], path: Path, title: str) -> None:
    """Draw attainment (y, %) against rate scale (x, log) for every policy into one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never open a window
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError(f"--plot needs matplotlib: pip install 'prism-xpu[plot]' ({exc})") from exc
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for name, points in curves.items():
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.plot(xs, [100 * y for y in ys], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("load (x the trace's request rate)")
    ax.set_ylabel("SLO attainment (%)")
    ax.set_ylim(0, 102)
    ax.axhline(99, color="grey", linewidth=0.6, linestyle="--")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"cannot write plot {path}: {exc.strerror}") from exc
    finally:
        plt.close(fig)
