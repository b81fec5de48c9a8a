"""Distortions grow with their level; the dermatology set builder and the rating aggregation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio as psnr

from conftest import SAMPLES, SHARED_DATA
from diqa_edge.contract import DEFAULT_CONTRACT as C
from diqa_edge.data.dermset import aggregate_ratings, make_derm_set, resize_long_side, views_figure
from diqa_edge.data.distort import EXTENDED_RECIPE, FAMILIES, PAPER_RECIPE, distort
from diqa_edge.data.loaders import load_manifest
from diqa_edge.data.splits import leaks, make_splits
from diqa_edge.sdk.decode import decode_image


@pytest.fixture(scope="module")
def photos():
    names = ["skin_ISIC_0000051.jpg", "photo_coffee.jpg"]
    return [resize_long_side(decode_image(SAMPLES / n, C), 256) for n in names]


def test_recipes():
    assert len(PAPER_RECIPE) == 18
    per_family = {}
    for family, _ in PAPER_RECIPE:
        per_family[family] = per_family.get(family, 0) + 1
    assert per_family == {"jpeg": 3, "gaussian_blur": 1, "pixelate": 2, "sharpen": 3, "darken": 2,
                          "brighten": 2, "desaturate": 2, "low_contrast": 3}
    assert set(PAPER_RECIPE) < set(EXTENDED_RECIPE) and len(EXTENDED_RECIPE) > 40


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_is_monotonic_in_its_level(photos, family):
    for rgb in photos:
        scores = [psnr(rgb, distort(rgb, family, level, seed=5), data_range=255)
                  for level in range(1, FAMILIES[family].levels + 1)]
        assert all(a > b for a, b in zip(scores, scores[1:])), (family, scores)
        assert scores[0] < 60  # level 1 already changes the image


def test_distortions_are_pure_functions_of_image_level_seed(photos):
    rgb = photos[0]
    before = rgb.copy()
    a = distort(rgb, "white_noise", 2, seed=1)
    assert np.array_equal(a, distort(rgb, "white_noise", 2, seed=1))
    assert not np.array_equal(a, distort(rgb, "white_noise", 2, seed=2))
    assert np.array_equal(rgb, before)
    with pytest.raises(ValueError):
        distort(rgb, "jpeg", 9)
    with pytest.raises(KeyError):
        distort(rgb, "fog", 1)


@pytest.mark.skipif(not (SHARED_DATA / "skin-cc0").exists(), reason="../shared/data/skin-cc0 not present")
def test_make_derm_set_on_real_skin_photos(tmp_path):
    report = make_derm_set(SHARED_DATA / "skin-cc0" / "images", tmp_path / "derm", limit=3,
                           workers=1, progress=False)
    assert report.pristine == 3 and report.views == 3 * 19 and not report.failed
    data = load_manifest(report.manifest)
    assert len(data) == 57 and data.pseudo
    by_group = {}
    for r in data.records:
        by_group.setdefault(r.group, []).append(r)
        w, h = Image.open(r.image).size
        assert max(w, h) == 512
    assert all(len(v) == 19 for v in by_group.values())
    for recs in by_group.values():
        pristine = next(r for r in recs if r.distortion == "none")
        assert pristine.mos == 10.0 and all(r.mos < 10.0 for r in recs if r is not pristine)
        darken = sorted((r for r in recs if r.distortion == "darken"), key=lambda r: r.level)
        assert darken[0].mos > darken[1].mos
    for split in make_splits(data, seed=0):
        assert leaks(data, split) == []
    with open(report.template) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 57 and set(rows[0]) == {"rater", "image", "score"}
    png = views_figure(report.manifest, next(iter(by_group)), tmp_path / "views.png")
    assert Image.open(png).size[0] > 400


def test_make_derm_set_reports_a_bad_photo_and_keeps_the_rest(tmp_path):
    src = tmp_path / "pristine"
    src.mkdir()
    Image.open(SAMPLES / "skin_ISIC_0000051.jpg").save(src / "good.jpg")
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    report = make_derm_set(src, tmp_path / "out", workers=1, progress=False)
    assert report.pristine == 1 and report.views == 19
    assert len(report.failed) == 1 and "bad.jpg" in report.failed[0]


def _write_ratings(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rater", "image", "score"])
        w.writerows(rows)


def test_aggregate_ratings_mos_ci_and_screening(tmp_path):
    truth = {f"img{i}.png": s for i, s in enumerate([2, 3, 4, 5, 6, 7, 8, 9])}
    rows = []
    for rater, offset in (("a", 0), ("b", 1), ("c", -1)):
        rows += [(rater, img, s + offset) for img, s in truth.items()]
    rows += [("troll", img, 11 - s) for img, s in truth.items()]   # anti-correlated rater
    rows += [("a", "img0.png", 3)]                                   # a duplicate
    rows += [("b", "img1.png", "high")]                              # not a number
    _write_ratings(tmp_path / "r.csv", rows)
    result = aggregate_ratings(tmp_path / "r.csv")
    assert set(result.rejected_raters) == {"troll"} and result.rejected_raters["troll"] < 0
    assert sorted(p.line for p in result.problems) == [34, 35]
    img5 = next(r for r in result.rows if r["image"] == "img5.png")
    # a, b, c gave 7, 8, 6: mean 7, sd 1, CI = t(0.975, 2) * 1 / sqrt(3) = 4.303 / 1.732
    assert img5["mos"] == 7.0 and img5["std"] == 1.0 and img5["n_ratings"] == 3
    assert img5["ci95"] == pytest.approx(4.3027 / 3 ** 0.5, abs=1e-3)
