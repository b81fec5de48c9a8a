"""Five seeded, grouped train / val / test splits, written to JSON so every experiment is reviewable.

Grouped: a pristine image and all its distorted views (KADID by reference,
the dermatology set by pristine photo) land in one split, otherwise a model
is tested on a view of a photo it trained on. BIQ2021 has no test part here
(its official test split is held out); LIVE-itW is test only.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_text
from .records import LoadedDataset, Record

DEFAULT_PROPORTIONS = (0.7, 0.1, 0.2)
PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    dataset: str
    index: int
    seed: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def part(self, name: str) -> tuple[str, ...]:
        return getattr(self, name)

    def select(self, records: list[Record], part: str) -> list[Record]:
        wanted = set(self.part(part))
        return [r for r in records if r.key in wanted]

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "index": self.index, "seed": self.seed,
                **{p: sorted(self.part(p)) for p in PARTS}}

    @classmethod
    def from_dict(cls, d: dict) -> "Split":
        return cls(d["dataset"], int(d["index"]), int(d["seed"]),
                   *(tuple(d.get(p, [])) for p in PARTS))


def proportions_for(role: str, proportions=DEFAULT_PROPORTIONS) -> tuple[float, float, float]:
    train, val, test = proportions
    if role == "test":
        return 0.0, 0.0, 1.0
    if role == "trainval":
        return train / (train + val), val / (train + val), 0.0
    return train, val, test


def make_split(dataset: LoadedDataset, index: int, seed: int = 0,
               proportions=DEFAULT_PROPORTIONS) -> Split:
    """Shuffle the groups with ``seed`` and ``index``; fill train, then val, by image count."""
    groups: dict[str, list[str]] = defaultdict(list)
    for r in dataset.records:
        groups[r.group].append(r.key)
    names = sorted(groups)
    rng = np.random.default_rng([seed, index])
    order = [names[i] for i in rng.permutation(len(names))]
    p_train, p_val, _ = proportions_for(dataset.role, proportions)
    total = len(dataset.records)
    parts: dict[str, list[str]] = {p: [] for p in PARTS}
    placed = 0
    for group in order:
        if placed < p_train * total - 1e-9:
            target = "train"
        elif placed < (p_train + p_val) * total - 1e-9:
            target = "val"
        else:
            target = "test"
        if dataset.role == "trainval" and target == "test":
            target = "val"
        parts[target].extend(groups[group])
        placed += len(groups[group])
    return Split(dataset.name, index, seed, *(tuple(sorted(parts[p])) for p in PARTS))


# Rows appended to a published subset after models were trained on it: each block is split on its own
# with the same seeded rule, so the photos an earlier model held out stay held out (and its numbers stay
# comparable), and the new rows are spread over train / val / test in the same proportions.
APPENDED_BLOCKS = {"biq2021": (4000,)}   # BIQ2021: 4,000 rows, 2,000 appended on 2026-12-02


def _blocks(dataset: LoadedDataset) -> list[LoadedDataset]:
    starts = [0] + [b for b in APPENDED_BLOCKS.get(dataset.name, ()) if b < len(dataset.records)]
    ends = starts[1:] + [len(dataset.records)]
    return [LoadedDataset(dataset.name, dataset.records[a:b], dataset.native_range, dataset.role)
            for a, b in zip(starts, ends)]


def first_block(data: LoadedDataset) -> LoadedDataset:
    """The rows a set had before any were appended (all of them for a set never appended to)."""
    return _blocks(data)[0]


def split_with_holdout(data: LoadedDataset, index: int, seed: int, holdout: float) -> Split:
    """The standard grouped split; for train/val-only sets a seeded share of groups becomes test.
    A set with appended rows (``APPENDED_BLOCKS``) is split block by block, then merged."""
    blocks = _blocks(data)
    if len(blocks) > 1:
        parts = [split_with_holdout(b, index, seed, holdout) for b in blocks]
        return Split(data.name, index, seed, *(tuple(sorted(k for s in parts for k in s.part(p))) for p in PARTS))
    if data.role != "trainval" or holdout <= 0:
        return make_split(data, index, seed)
    as_all = LoadedDataset(data.name, data.records, data.native_range, "all")
    val_share = 0.1 / 0.8 * (1 - holdout)
    return make_split(as_all, index, seed, proportions=(1 - holdout - val_share, val_share, holdout))


def run_split_part(card: dict, part: str) -> list[Record]:
    """A trained model's own split part ("val" or "test") of every dataset its run card names, rebuilt
    from the card's ``dataset_dirs`` and ``split``; a data set no longer on disk is left out, with a
    warning."""
    import warnings

    from ..errors import DiqaError
    from .registry import load_dataset

    records: list[Record] = []
    split = card.get("split", {})
    for name, folder in (card.get("dataset_dirs") or {}).items():
        try:
            data = load_dataset(name, folder)
        except (FileNotFoundError, DiqaError) as exc:
            warnings.warn(f"{name}: {exc}; its images are left out", stacklevel=2)
            continue
        s = split_with_holdout(data, int(split.get("index", 0)), int(split.get("seed", 0)),
                               float(split.get("trainval_holdout", 0.2)))
        records += s.select(data.records, part)
    return records


def skin_set_parts(skin_dir: str | Path, index: int = 0, seed: int = 0, holdout: float = 0.2) -> dict[str, list[Record]]:
    """The train / val / test records of a built dermoscopy skin set under the standard split (split 0, seed 0,
    20 % held out, as training uses): what the gate benchmarks judge on."""
    from .registry import load_dataset

    data = load_dataset("derm", skin_dir)
    split = split_with_holdout(data, index, seed, holdout)
    return {p: split.select(data.records, p) for p in ("train", "val", "test")}


def make_splits(dataset: LoadedDataset, n: int = 5, seed: int = 0,
                proportions=DEFAULT_PROPORTIONS) -> list[Split]:
    return [make_split(dataset, i, seed, proportions) for i in range(n)]


def splits_json(splits: list[Split]) -> str:
    return json.dumps([s.to_dict() for s in splits], indent=1, sort_keys=True) + "\n"


def write_splits(path: str | Path, splits: list[Split]) -> str:
    """Write atomically; return the SHA-256 of the file (identical for the same seed and data)."""
    text = splits_json(splits)
    atomic_write_text(path, text)
    return hashlib.sha256(text.encode()).hexdigest()


def read_splits(path: str | Path) -> list[Split]:
    return [Split.from_dict(d) for d in json.loads(Path(path).read_text(encoding="utf-8"))]


def leaks(dataset: LoadedDataset, split: Split) -> list[str]:
    """Groups found in more than one part, or images in no part: should be empty."""
    where: dict[str, set[str]] = defaultdict(set)
    part_of = {key: p for p in PARTS for key in split.part(p)}
    problems = []
    for r in dataset.records:
        if r.key not in part_of:
            problems.append(f"image {r.key} is in no part")
            continue
        where[r.group].add(part_of[r.key])
    problems += [f"group {g} spans {sorted(ps)}" for g, ps in where.items() if len(ps) > 1]
    return problems
