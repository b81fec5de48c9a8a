"""Datasets by name: one table feeds the CLI choices, the experiment runner and the docs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import loaders
from .records import LoadedDataset


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    loader: Callable[..., LoadedDataset]
    native_range: tuple[float, float]
    role: str           # "all": train/val/test; "trainval": never test; "test": test only
    layout: str         # what the loader expects under its root, for error messages and --help


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("koniq", "KonIQ-10k", loaders.load_koniq, (1.0, 5.0), "all",
                "koniq10k_scores_and_distributions.csv + 1024x768/"),
    DatasetSpec("kadid", "KADID-10k", loaders.load_kadid, (1.0, 5.0), "all",
                "dmos.csv + images/"),
    DatasetSpec("spaq", "SPAQ", loaders.load_spaq, (0.0, 100.0), "all",
                "Annotations/MOS and Image attribute scores.xlsx + TestImage/"),
    DatasetSpec("gfiqa", "GFIQA-20k", loaders.load_gfiqa, (0.0, 1.0), "all",
                "<mos csv> + image/"),
    DatasetSpec("biq2021", "BIQ2021", loaders.load_biq2021, (0.0, 1.0), "trainval",
                "Train (Images and MOS).csv + Images/"),
    DatasetSpec("livec", "LIVE In the Wild", loaders.load_livec, (0.0, 100.0), "test",
                "Data/AllImages_release.mat + Data/AllMOS_release.mat + Images/"),
    DatasetSpec("derm", "Dermatology (manifest)", loaders.load_manifest, (1.0, 10.0), "all",
                "manifest.csv (image, mos, group, ...)"),
    DatasetSpec("phone", "Phone photos of skin and their faults (manifest, grouped by patient)", loaders.load_manifest,
                (1.0, 10.0), "all", "manifest.csv (image, mos, group = patient, ...)"),
)}
SKIN_SETS = ("derm", "phone")   # manifest sets of skin views: the reasons heads and the retake rule learn on them


def load_dataset(name: str, root: str | Path, *, skip_bad: bool = False) -> LoadedDataset:
    """``root`` is the dataset folder (for ``derm``, ``phone`` or ``manifest:`` sets, the manifest CSV or its folder)."""
    root = Path(root)
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if name in SKIN_SETS:
        path = root / "manifest.csv" if root.is_dir() else root
        return loaders.load_manifest(path, skip_bad=skip_bad, name=name)
    return DATASETS[name].loader(root, skip_bad=skip_bad)
