"""The resized-image cache serves exactly the SDK's pixels; the data commands as a user runs them."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys

import numpy as np

from helpers import layouts
from conftest import ROOT, SAMPLES
from diqa_edge.contract import DEFAULT_CONTRACT as C
from diqa_edge.data.cache import ResizedImageCache
from diqa_edge.sdk.decode import decode_image
from diqa_edge.sdk.preprocess import center_crop, resize_and_crop


def test_cache_hits_and_serves_the_sdk_crop_exactly(tmp_path):
    cache = ResizedImageCache(tmp_path, C, C.input_size)
    photo = SAMPLES / "photo_chelsea.jpg"
    first = cache.get(photo)
    second = cache.get(photo)
    assert (cache.misses, cache.hits) == (1, 1)
    assert np.array_equal(first, second)
    # cached at the contract's size, a center crop is bit-identical to the SDK path
    assert np.array_equal(center_crop(second, C.input_size), resize_and_crop(decode_image(photo, C), C))


def test_cache_is_keyed_by_contract_and_file_content(tmp_path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes((SAMPLES / "photo_coffee.jpg").read_bytes())
    a = ResizedImageCache(tmp_path / "c", C, 252)
    b = ResizedImageCache(tmp_path / "c", C.replace(input_size=320), 252)
    assert a.folder != b.folder
    key1 = a.entry(photo)
    a.get(photo)
    photo.write_bytes((SAMPLES / "photo_rocket.jpg").read_bytes())
    assert a.entry(photo) != key1
    assert min(a.get(photo).shape[:2]) == 252 and a.misses == 2
    key1.write_bytes(b"damaged")  # a corrupt entry is rebuilt, not served
    photo.write_bytes((SAMPLES / "photo_coffee.jpg").read_bytes())
    assert min(a.get(photo).shape[:2]) == 252


def test_entries_are_named_by_the_files_sha1_so_a_moved_photo_hits_without_being_read(tmp_path, monkeypatch):
    from diqa_edge import identity

    photo = tmp_path / "a" / "p.jpg"
    photo.parent.mkdir()
    photo.write_bytes((SAMPLES / "photo_coffee.jpg").read_bytes())
    cache = ResizedImageCache(tmp_path / "c", C, 252)
    cache.get(photo)
    # the name entries had when the cache hashed every file itself: they stay valid
    assert cache.entry(photo).name == hashlib.sha1(photo.read_bytes()).hexdigest() + ".npy"
    read, digest = [], identity.content_digest
    monkeypatch.setattr(identity, "content_digest", lambda p: read.append(p) or digest(p))
    again = ResizedImageCache(tmp_path / "c", C, 252)
    again.get(photo)
    assert (again.hits, again.misses, read) == (1, 0, [])            # the memo answered: the file was not hashed
    moved = tmp_path / "b" / "q.jpg"
    moved.parent.mkdir()
    moved.write_bytes(photo.read_bytes())
    assert np.array_equal(again.get(moved), again.get(photo)) and (again.hits, again.misses) == (3, 0)
    assert read == [str(moved.resolve())]                           # a new place is hashed once, then a hit


def _diqa(*args):
    return subprocess.run([sys.executable, "-m", "diqa_edge.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_make_splits_and_aggregate_ratings_commands(tmp_path):
    layouts.kadid(tmp_path / "kadid", refs=6)
    out = _diqa("make-splits", "kadid", tmp_path / "kadid", tmp_path / "splits.json", "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("split ") == 5 and "sha256" in out.stdout
    # a bad label file: one line, no traceback, exit 1
    (tmp_path / "kadid" / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,9.9,0.1\n")
    out = _diqa("make-splits", "kadid", tmp_path / "kadid", tmp_path / "s2.json")
    assert out.returncode == 1 and "dmos.csv:2" in out.stderr and "Traceback" not in out.stderr

    ratings = tmp_path / "ratings.csv"
    with open(ratings, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rater", "image", "score"])
        for rater in "abc":
            for i in range(6):
                w.writerow([rater, f"images/x{i}.png", 2 + i])
    out = _diqa("aggregate-ratings", ratings)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(open(tmp_path / "mos_manifest.csv")))
    assert len(rows) == 6 and float(rows[0]["mos"]) == 2.0 and rows[0]["n_ratings"] == "3"


def test_data_commands_explain_themselves():
    out = _diqa("--help")
    for command in ("score", "make-derm-set", "aggregate-ratings", "make-splits"):
        assert command in out.stdout
    out = _diqa("make-derm-set", "--help")
    assert "--recipe" in out.stdout and "18 views" in out.stdout
