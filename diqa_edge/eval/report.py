"""Markdown for the tables people read in cards and reports: one writer, so every table has the same
form (header, separator, one row per line) and a missing figure shows as an en dash."""

from __future__ import annotations

from typing import Iterable, Sequence


def cell(value, fmt: str = ".3f") -> str:
    """A number formatted, None (or NaN) as '–', anything else as its text."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    """The lines of a markdown table; each row's cells are already text (see ``cell``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def reason_auc_table(aucs: dict[str, dict]) -> list[str]:
    """Per-reason AUC of a reasons head (``training.metrics.reason_aucs``): reason, AUC, positives, negatives."""
    return markdown_table(("reason", "AUC", "positives", "negatives"),
                          ((r, cell(v["auc"]), v["positives"], v["negatives"]) for r, v in aucs.items()))
