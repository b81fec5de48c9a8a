"""The camera's own faults (data/camera.py) and the phone-photo set built on real phone photos."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES
from diqa_edge.data.camera import CAMERA_FAMILIES, GLARE_RADIUS, LEVELS, OCCLUSION_SHARE
from diqa_edge.data.distort import REASONS
from diqa_edge.data.kadid import distort_kadid, kadid_label, reason_of
from diqa_edge.sdk.hints import HINTS

SKIN_SAMPLE = SAMPLES / "skin_ISIC_0000051.jpg"


@pytest.fixture(scope="module")
def skin() -> np.ndarray:
    return np.asarray(Image.open(SKIN_SAMPLE).convert("RGB").resize((300, 240)))


@pytest.mark.parametrize("family", sorted(CAMERA_FAMILIES))
def test_each_camera_fault_grows_with_its_level_and_its_label_falls(skin, family):
    """Level 1 barely changes the photo, level 5 changes it most; the label never rises with the level;
    the reason is one the reasons head predicts and the patient has a hint for."""
    damage = [np.abs(distort_kadid(skin, family, lv, seed=5).astype(float) - skin).mean() for lv in LEVELS]
    labels = [kadid_label(family, lv) for lv in LEVELS]
    # (mean absolute change: small for a blur on smooth skin, which is why SSIM-like labels fail there)
    assert all(a < b for a, b in zip(damage, damage[1:])) and damage[-1] > 1.0, damage
    assert all(a >= b - 1e-9 for a, b in zip(labels, labels[1:])) and 1.0 <= labels[-1] < 5.0 < labels[0] <= 10.0
    assert reason_of(family) in REASONS and reason_of(family) in HINTS
    view = distort_kadid(skin, family, 3, seed=5)
    assert view.dtype == np.uint8 and view.shape == skin.shape


def test_glare_clips_a_patch_near_the_centre_sized_by_its_level(skin):
    h, w = skin.shape[:2]
    for level in (1, 5):
        view = distort_kadid(skin, "glare", level, seed=11).astype(int)
        clipped = (view.min(axis=2) >= 250)
        centre = clipped[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
        core = np.pi * (GLARE_RADIUS[level - 1] * min(h, w)) ** 2 / (h * w)
        assert centre.mean() > 0 and clipped.mean() > 0.3 * core, (level, clipped.mean(), core)
    assert kadid_label("glare", 5) == pytest.approx(kadid_label("brighten", 5))   # its stated rule


def test_occlusion_covers_the_share_its_level_states(skin):
    for level in LEVELS:
        view = distort_kadid(skin, "occlusion", level, seed=3)
        changed = (np.abs(view.astype(int) - skin).max(axis=2) > 25).mean()
        assert abs(changed - OCCLUSION_SHARE[level - 1]) < 0.06, (level, changed)
    assert kadid_label("occlusion", 5) == pytest.approx(2.0)


def test_a_colour_cast_keeps_the_light_and_turns_the_colours(skin):
    """The white balance wrong: mean luma kept within 3 % (what the clipped highlights move; a cast is not a
    darkening, which the recipe teaches as "too dark"), the channels' balance moved more with each level,
    labelled by its stated rule (KADID type 8 at the level) with the colour reason."""
    from diqa_edge.data.camera import CAST_RECIPE
    from diqa_edge.data.kadid import dmos_to_score, kadid_dmos

    luma = np.array([0.299, 0.587, 0.114])
    base = skin.reshape(-1, 3).mean(0)
    for seed in (11, 1, 4, 7):          # the four directions: warm, cool, green, magenta
        shifts = []
        for _, level in CAST_RECIPE:
            view = distort_kadid(skin, "colour_cast", level, seed=seed).reshape(-1, 3).mean(0)
            assert abs(view @ luma - base @ luma) < 0.03 * (base @ luma), (seed, level)
            shifts.append(np.abs(np.log(view / base)).max())
        assert all(a < b for a, b in zip(shifts, shifts[1:])) and shifts[0] < 0.08 < 0.25 < shifts[-1], (seed, shifts)
    # KADID type 8 (colour saturation 2) at the level, read here without the family's table
    assert [kadid_label("colour_cast", lv) for lv in LEVELS] == pytest.approx(
        [dmos_to_score(kadid_dmos()[(8, lv)][0]) for lv in LEVELS])
    assert reason_of("colour_cast") == "colour"


def test_the_drawn_camera_faults_are_the_shipped_sets():
    """The pairs a photo's camera views are drawn from, in order, and one photo's draw as the shipped
    dermoscopy set holds it: a family added to data/camera.py must not move the shipped views."""
    from diqa_edge.data.camera import CAMERA_RECIPE
    from diqa_edge.data.skinviews import drawn_views

    assert CAMERA_RECIPE == tuple((f, lv) for f in ("glare", "low_light", "shake_noise", "zoom", "haze",
                                                    "background_focus", "occlusion") for lv in LEVELS)
    assert drawn_views(0, "ISIC_0000051", CAMERA_RECIPE, 10) == [
        ("glare", 4), ("shake_noise", 1), ("zoom", 1), ("zoom", 2), ("zoom", 3), ("background_focus", 1),
        ("background_focus", 2), ("occlusion", 1), ("occlusion", 2), ("occlusion", 3)]


@pytest.mark.parametrize("argv, error", [
    (["photos", "--camera-views", "36"], "a whole number from 0 to 35"),
    (["photos", "--camera-views", "x"], "a whole number from 0 to 35"),
    (["photos", "--camera-views", "20"], "give OUT_DIR"),
    (["photos", "--colour-casts"], "give OUT_DIR"),
    (["photos", "out", "--phone", "--camera-views", "5"], "--camera-views is for the dermoscopy set"),
    (["photos", "out", "--views-per-photo", "5"], "--views-per-photo is for --phone"),
    (["photos", "out", "--phone", "--views-per-photo", "-1"], "a count, 0 or more"),
])
def test_make_skin_set_refuses_options_it_cannot_build(tmp_path, capsys, argv, error):
    """A recipe other than the shipped one goes to its own folder (training and the benchmarks read the
    default ones); an option of the other set's kind is an error, not ignored. Nothing is written."""
    import argparse

    from diqa_edge.data import cli_skinset

    parser = argparse.ArgumentParser()
    cli_skinset.add_arguments(parser)
    argv = [str(tmp_path / a) if a in ("photos", "out") else a for a in argv]
    try:
        code = cli_skinset.run(parser.parse_args(argv))
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and error in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_combined_faults_are_labelled_by_their_worst_part():
    # low light level 5: darken 5, noise 3, motion blur 3; shake with noise level 4: motion 4, noise 3
    assert kadid_label("low_light", 5) == pytest.approx(min(kadid_label("darken", 5), kadid_label("noise", 3),
                                                            kadid_label("motion_blur", 3)))
    assert kadid_label("shake_noise", 4) == pytest.approx(min(kadid_label("motion_blur", 4), kadid_label("noise", 3)))
    assert kadid_label("low_light", 1) == pytest.approx(kadid_label("darken", 1))   # no noise, no shake


def test_phone_set_is_grouped_by_patient_and_labels_the_reviewed_photos(tmp_path):
    """Each phone photo at its own size: as taken (10), or 'as taken: blur' (severe, labelled as KADID's
    level-4 Gaussian blur) when the reviewed list says so, with no fault views built on a bad base."""
    from diqa_edge.data.registry import load_dataset
    from diqa_edge.data.skinviews import PHONE_CAST_VIEWS, make_phone_set
    from diqa_edge.training.feature_model import reason_targets

    folder = tmp_path / "phone"
    (folder / "images").mkdir(parents=True)
    photo = Image.open(SKIN_SAMPLE).convert("RGB").resize((300, 300))
    rows = [("a.jpg", "PAT_1"), ("b.jpg", "PAT_1"), ("c.jpg", "PAT_2")]
    for name, _ in rows:
        photo.save(folder / "images" / name, quality=92)
    with open(folder / "manifest.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("image", "patient")] + rows)
    report = make_phone_set(folder, tmp_path / "set", workers=1, views_per_photo=4, reviewed={"c.jpg": "blur"},
                            progress=False)
    assert report.views == 2 * (1 + 4) + 1 and not report.failed
    # with colour casts: one more view a good photo, the views before it the same files
    before = {p.name: p.read_bytes() for p in (tmp_path / "set" / "images").iterdir()}
    casts = make_phone_set(folder, tmp_path / "casts", workers=1, views_per_photo=4, reviewed={"c.jpg": "blur"},
                           progress=False, colour_casts=True)
    assert casts.views == 2 * (1 + 4 + PHONE_CAST_VIEWS) + 1
    cast_rows = [r for r in load_dataset("phone", tmp_path / "casts").records if r.distortion == "colour_cast"]
    assert len(cast_rows) == 2 and all(r.mos == pytest.approx(kadid_label("colour_cast", r.level), abs=1e-4)
                                       for r in cast_rows)
    assert all((tmp_path / "casts" / "images" / name).read_bytes() == data for name, data in before.items())
    data = load_dataset("phone", tmp_path / "set")
    assert {r.group for r in data.records} == {"PAT_1", "PAT_2"}
    bad = [r for r in data.records if r.group == "PAT_2"]
    assert len(bad) == 1 and bad[0].distortion == "as_taken_blur" and bad[0].level == 5
    assert bad[0].mos == pytest.approx(kadid_label("gaussian_blur", 4), abs=1e-4)
    assert np.array_equal(np.asarray(Image.open(bad[0].image)), np.asarray(Image.open(folder / "images" / "c.jpg")))
    y, used = reason_targets(bad)
    assert y[0, REASONS.index("blur")] == 1 and used[0].all()
    sizes = {Image.open(r.image).size for r in data.records}
    assert sizes == {(300, 300)}                     # built at the photo's own resolution
