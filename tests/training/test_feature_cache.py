"""The feature cache keys rows by content (identity.image_id): photos laid out anew hit, and rows stored under
the old stat-based ids are served once through their legacy id and aliased, so the next run hits directly.
No model: rows are written with ``add_chunk`` as ``cached_outputs`` does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np

from conftest import SAMPLES
from diqa_edge.training import feature_cache
from diqa_edge.training.feature_cache import FeatureCache, legacy_image_id

FEATURES = np.arange(3 * 4, dtype=np.float32).reshape(3, 4) / 8     # exact in fp16


def photos_in(folder, mtime_s: int = 1_500_000_000) -> list:
    folder.mkdir(parents=True)
    out = []
    for i, src in enumerate(sorted(SAMPLES.glob("*.jpg"))[:3]):
        dst = folder / f"{i}-{src.name}"
        shutil.copyfile(src, dst)
        os.utime(dst, ns=((mtime_s + i) * 10**9,) * 2)
        out.append(dst)
    return out


def index_lines(cache: FeatureCache) -> list[dict]:
    return [json.loads(line) for line in (cache.folder / "index.jsonl").read_text().splitlines()]


def test_the_same_photos_laid_out_anew_hit(tmp_path):
    cache = FeatureCache(tmp_path / "features" / "k")
    old = photos_in(tmp_path / "data")
    ids = cache.ids_for(old)
    assert ids == [hashlib.sha1(p.read_bytes()).hexdigest() for p in old]
    cache.add_chunk(ids, FEATURES)
    new = photos_in(tmp_path / "copied" / "data", mtime_s=1_700_000_000)   # new paths, new mtimes
    again = FeatureCache(cache.folder)
    assert again.ids_for(new) == ids and again.missing(ids) == [] and again.aliased == 0
    np.testing.assert_array_equal(again.read(ids), FEATURES)


def test_rows_under_legacy_ids_are_served_once_and_aliased(tmp_path, monkeypatch):
    photos = photos_in(tmp_path / "data")
    legacy = FeatureCache(tmp_path / "features" / "k")
    legacy.add_chunk([legacy_image_id(p) for p in photos], FEATURES, seconds=3.0)   # a cache written before
    assert all(len(i) == 20 for i in legacy._index)

    cache = FeatureCache(legacy.folder)
    ids = cache.ids_for(photos)
    assert cache.missing(ids) == [] and cache.aliased == 3 and cache.computed == 0
    np.testing.assert_array_equal(cache.read(ids), FEATURES)
    assert len(cache) == 3 and cache.build_seconds == 3.0       # three rows under six ids, no compute added
    chunk = index_lines(cache)[0]["file"]
    assert index_lines(cache)[1:] == [{"file": chunk, "ids": [], "aliases": {ids[0]: 0, ids[1]: 1, ids[2]: 2}}]

    def no_legacy_lookup(path):
        raise AssertionError(f"{path}: looked up by its legacy id although its alias is in the index")

    monkeypatch.setattr(feature_cache, "legacy_image_id", no_legacy_lookup)
    later = FeatureCache(cache.folder)                           # the next run
    assert later.ids_for(photos) == ids and later.missing(ids) == [] and later.aliased == 0
    np.testing.assert_array_equal(later.read(ids), FEATURES)
    assert len(index_lines(later)) == 2                          # nothing more appended


def test_a_legacy_row_of_a_since_edited_file_is_not_served(tmp_path):
    photos = photos_in(tmp_path / "data")
    legacy = FeatureCache(tmp_path / "features" / "k")
    legacy.add_chunk([legacy_image_id(p) for p in photos], FEATURES)
    photos[1].write_bytes((SAMPLES / "photo_rocket.jpg").read_bytes())   # edited: new size and mtime
    cache = FeatureCache(legacy.folder)
    ids = cache.ids_for(photos)
    assert cache.missing(ids) == [1] and cache.aliased == 2


def test_damaged_index_lines_are_skipped(tmp_path):
    photos = photos_in(tmp_path / "data")
    cache = FeatureCache(tmp_path / "features" / "k")
    ids = cache.ids_for(photos)
    cache.add_chunk(ids, FEATURES)
    chunk = index_lines(cache)[0]["file"]
    with open(cache.folder / "index.jsonl", "a") as fh:
        fh.write(json.dumps({"file": chunk, "ids": [], "aliases": {"f" * 40: "zero"}}) + "\n")
        fh.write(json.dumps({"file": chunk, "ids": [None, 3]}) + "\n")
        fh.write(json.dumps(["not", "an", "entry"]) + "\n")
        fh.write(json.dumps({"file": chunk, "ids": [], "aliases": {"d" * 40: -1}}) + "\n")   # would serve the last row
        fh.write(json.dumps({"file": chunk, "ids": ["c" * 40], "seconds": "x"}) + "\n")
        fh.write('{"file": "' + chunk + '", "ids": ["' + "e" * 40)           # cut by an interruption
    again = FeatureCache(cache.folder)
    assert again.missing(ids) == [] and again.missing(["f" * 40, "e" * 40, "d" * 40, "c" * 40]) == [0, 1, 2, 3]
    assert len(again) == 3
    np.testing.assert_array_equal(again.read(ids), FEATURES)
