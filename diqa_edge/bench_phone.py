"""The phone test photos and the faults built on them, as every phone-gate benchmark builds them.

Why in the package: ``benchmarks/phone_gate.py`` judges the gate on these views and other benchmarks judge
other heads or files on exactly the same ones (``benchmarks/nonlinear_reasons_rows.py``); the photos, the
fault list and the view seeds live here once, so two tables cannot drift onto different views.

The photos: PAD-UFES-20 smartphone photos (``pad-ufes-phone``, 300 px) of the patients in the test part of
the phone set's grouped split (split 0, seed 0, as training uses); each fault family (KADID's nine, the
camera's eight: the seven the recipe builds and the colour cast it does not, the three no-detail frames) at
the levels asked, with seeds that training never drew.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SEED_OFFSET = 7919     # view seeds past any the phone set drew


def test_photos(phone_set: Path, phone_dir: Path, index: int = 0, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(photos that passed review, photos a reviewer sent back) of the test part's patients."""
    from .data.registry import load_dataset
    from .data.skinviews import reviewed_retakes
    from .data.splits import split_with_holdout

    data = load_dataset("phone", phone_set)
    split = split_with_holdout(data, index, seed, 0.2)
    patients = {r.group for r in split.select(data.records, "test")}
    with open(phone_dir / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["patient"] in patients]
    reviewed = reviewed_retakes()
    folder = phone_dir / "images"
    good = [folder / r["image"] for r in rows if r["image"] not in reviewed]
    bad = [folder / r["image"] for r in rows if r["image"] in reviewed]
    return good, bad


def fault_list(levels) -> list[tuple[str, int]]:
    """Every fault family at each of ``levels``; the no-detail frames at level 5 only (they have one)."""
    from .data.camera import CAMERA_FAMILIES
    from .data.kadid import FAMILIES, NO_DETAIL

    return ([(f, lv) for f in FAMILIES for lv in levels] + [(f, lv) for f in CAMERA_FAMILIES for lv in levels]
            + [(f, 5) for f in NO_DETAIL])


def fault_view(photo: Path, rgb: np.ndarray, family: str, level: int) -> np.ndarray:
    """``family`` at ``level`` built on a decoded photo, seeded by the photo's name and the level."""
    from .data.kadid import distort_kadid
    from .data.skinviews import view_seed

    return distort_kadid(rgb, family, level, seed=view_seed(SEED_OFFSET, photo.stem, level))
