"""Grouped splits: no group crosses parts for any source; the JSON is byte-identical for a seed."""

from __future__ import annotations

import hashlib

import pytest

from helpers import layouts
from conftest import SHARED_DATA
from diqa_edge.data.registry import load_dataset
from diqa_edge.data.splits import leaks, make_splits, read_splits, write_splits


@pytest.mark.parametrize("name", sorted(layouts.BUILDERS))
def test_no_group_leaks_across_parts_for_every_source(tmp_path, name):
    layouts.BUILDERS[name](tmp_path)
    data = load_dataset(name, tmp_path)
    splits = make_splits(data, n=5, seed=3)
    assert len(splits) == 5
    for split in splits:
        assert leaks(data, split) == []
        assert sum(len(split.part(p)) for p in ("train", "val", "test")) == len(data)
        if data.role == "test":
            assert not split.train and not split.val and len(split.test) == len(data)
        if data.role == "trainval":
            assert not split.test


def test_leak_detector_catches_a_leak(tmp_path):
    from dataclasses import replace

    layouts.kadid(tmp_path, refs=10)
    data = load_dataset("kadid", tmp_path)
    split = make_splits(data, n=1)[0]
    moved = split.train[0]  # one view of a training reference moved into test
    bad = replace(split, test=split.test + (moved,), train=split.train[1:])
    assert any(p.startswith(f"group {moved[:3]}") and "spans" in p for p in leaks(data, bad))


def test_split_json_is_deterministic_and_round_trips(tmp_path):
    layouts.kadid(tmp_path / "kadid", refs=10)
    data = load_dataset("kadid", tmp_path / "kadid")
    h1 = write_splits(tmp_path / "a.json", make_splits(data, seed=7))
    h2 = write_splits(tmp_path / "b.json", make_splits(data, seed=7))
    assert h1 == h2 == hashlib.sha256((tmp_path / "a.json").read_bytes()).hexdigest()
    assert h1 != write_splits(tmp_path / "c.json", make_splits(data, seed=8))
    assert read_splits(tmp_path / "a.json") == make_splits(data, seed=7)
    first = make_splits(data, seed=7)
    assert len({s.test for s in first}) > 1  # the five splits differ


@pytest.mark.skipif(not (SHARED_DATA / "biq2021").exists(), reason="../shared/data/biq2021 not present")
def test_real_biq2021_splits_are_train_val_only_with_the_papers_proportions():
    data = load_dataset("biq2021", SHARED_DATA / "biq2021")
    n = len(data)
    for split in make_splits(data, seed=0):
        assert not split.test and leaks(data, split) == []
        assert len(split.train) == round(n * 0.7 / 0.8) and len(split.val) == n - round(n * 0.7 / 0.8)   # 70:10


@pytest.mark.skipif(not (SHARED_DATA / "biq2021").exists(), reason="../shared/data/biq2021 not present")
def test_appended_biq2021_rows_keep_the_earlier_held_out_photos_held_out():
    """The 800 photos the earlier shipped model was tested on (split of the first 4,000 rows) stay in the
    test part now that 2,000 rows were appended; the new rows are split in the same proportions."""
    from diqa_edge.data.records import LoadedDataset
    from diqa_edge.data.splits import split_with_holdout

    data = load_dataset("biq2021", SHARED_DATA / "biq2021")
    first = LoadedDataset(data.name, data.records[:4000], data.native_range, data.role)
    old = split_with_holdout(first, 0, 0, 0.2)
    new = split_with_holdout(data, 0, 0, 0.2)
    assert len(old.test) == 800 and set(old.test) <= set(new.test)
    assert set(old.train) <= set(new.train) and set(old.val) <= set(new.val)
    assert leaks(data, new) == []
    added = len(data) - 4000
    assert len(new.test) - 800 == round(0.2 * added)
