"""Figures: one way to get pyplot without a screen and to write a PNG whole."""

from __future__ import annotations

from pathlib import Path

from ..fileio import written_in_place


def pyplot():
    """matplotlib's pyplot on the file-only Agg back end (no screen here, none on a CI runner)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 90) -> Path:
    """Written beside and renamed, so an interrupted run never leaves half a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_in_place(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return path
