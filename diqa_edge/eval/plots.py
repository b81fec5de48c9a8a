"""Figures: one way to get pyplot without a screen and to write a PNG whole."""

from __future__ import annotations

import os
from pathlib import Path


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
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)
    return path
