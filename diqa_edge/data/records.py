"""What every loader returns, the paper's MOS rescaling, and how bad rows are reported.

Why one record type: the trainer mixes seven sources with different native
scales; each record keeps its native MOS next to the [1, 10] value so tables
can always be traced back to the published numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

from ..errors import DiqaError

SCORE_MIN, SCORE_MAX = 1.0, 10.0
T = TypeVar("T")


def seeded_subsample(items: Sequence[T], limit: int | None, seed: int) -> list[T]:
    """At most ``limit`` of ``items``, drawn without replacement by ``seed`` and kept in their order, so a
    quick run, a parity set and a benchmark can say exactly which images they used."""
    import numpy as np

    if not limit or len(items) <= limit:
        return list(items)
    rng = np.random.default_rng(seed)
    return [items[i] for i in sorted(rng.choice(len(items), size=limit, replace=False))]


def rescale_mos(value: float, native_min: float, native_max: float) -> float:
    """The paper's rule: map a dataset's declared native range linearly onto [1, 10]."""
    if not native_max > native_min:
        raise ValueError(f"native range must be increasing, got [{native_min}, {native_max}]")
    return SCORE_MIN + (SCORE_MAX - SCORE_MIN) * (float(value) - native_min) / (native_max - native_min)


@dataclass(frozen=True)
class Record:
    image: Path
    name: str                       # the image's name as the label file writes it (split files use it)
    mos_native: float
    mos: float                      # on [1, 10]
    group: str                      # images sharing a group never straddle splits
    dataset: str
    std: float | None = None
    n_ratings: int | None = None
    pseudo: bool = False            # True: a "pseudo-MOS" derived from the distortion, not humans
    distortion: str | None = None   # family name for artificially distorted images ("none" = pristine)
    level: int | None = None

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class DatasetError(DiqaError):
    """A dataset whose label file has bad rows; lists every one of them."""

    def __init__(self, dataset: str, problems: list[Problem]):
        self.dataset = dataset
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{dataset}: {len(problems)} bad row(s) (pass skip_bad=True / --skip-bad "
                         f"to drop them):\n  {shown}{more}")


@dataclass
class LoadedDataset:
    name: str
    records: list[Record]
    native_range: tuple[float, float]
    role: str                        # "all" (train/val/test), "trainval" or "test"
    skipped: list[Problem] = field(default_factory=list)
    pseudo: bool = False

    def __len__(self) -> int:
        return len(self.records)


def finish(name: str, records: list[Record], problems: list[Problem], *, skip_bad: bool,
           native_range: tuple[float, float], role: str, pseudo: bool = False) -> LoadedDataset:
    """Fail with every problem at once, or drop the bad rows and say how many."""
    if problems and not skip_bad:
        raise DatasetError(name, problems)
    if problems:
        warnings.warn(f"{name}: skipped {len(problems)} bad row(s); first: {problems[0]}", stacklevel=3)
    return LoadedDataset(name, records, native_range, role, skipped=problems, pseudo=pseudo)
