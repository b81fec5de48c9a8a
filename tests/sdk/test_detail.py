"""The look at 1:1: the native-resolution centre tile's noise and sharpness, the rule on them, and the
bundled model's answer on photos whose faults only show at full size."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import SAMPLES
from diqa_edge.contract import Contract, ContractError
from diqa_edge.errors import ModelLoadError
from diqa_edge.sdk.decision import RetakeRule
from diqa_edge.sdk.detail import DetailRule, DetailStats, centre_tile, measure_detail
from diqa_edge.sdk.manifest import ModelManifest

SKIN = SAMPLES / "skin_ISIC_0000051.jpg"      # 1024 x 769: its centre tile is at the photo's own pixels


def _skin() -> np.ndarray:
    return np.asarray(Image.open(SKIN).convert("RGB"))


def _blurred(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def test_the_tile_is_the_centre_at_the_photos_own_pixels():
    rgb = np.arange(301 * 203 * 3, dtype=np.uint32).reshape(203, 301, 3).astype(np.uint8)
    tile = centre_tile(rgb, 64)
    assert tile.shape == (64, 64, 3)
    assert np.array_equal(tile, rgb[(203 - 64) // 2:(203 - 64) // 2 + 64, (301 - 64) // 2:(301 - 64) // 2 + 64])
    assert centre_tile(rgb, 256) is None      # smaller than the tile: the size rule answers it


@pytest.mark.parametrize("sigma", [5.0, 10.0, 20.0])
def test_noise_is_the_sigma_of_white_noise_on_a_flat_patch(sigma):
    rng = np.random.default_rng(1)
    tile = np.clip(128 + rng.normal(0, sigma, (256, 256, 1)), 0, 255).repeat(3, axis=2).astype(np.uint8)
    assert measure_detail(tile).noise == pytest.approx(sigma, rel=0.06)


def test_sharpness_falls_with_blur_and_is_not_judged_on_a_uniform_patch():
    tile = centre_tile(_skin(), 256)
    sharp = measure_detail(tile).sharpness
    soft = [measure_detail(centre_tile(_blurred(_skin(), s), 256)).sharpness for s in (1.0, 2.0, 3.0)]
    assert sharp > 0.5
    assert sharp > soft[0] > soft[1] > soft[2]
    assert soft[1] < 0.45                   # 2 px of Gaussian blur at 1:1: KADID's level 4
    assert measure_detail(np.full((256, 256, 3), 90, np.uint8)).sharpness is None


def _kadid_at_1_to_1(rgb: np.ndarray, *faults: tuple[str, int]):
    """The centre tile of ``rgb`` with KADID's ``faults`` built in turn at 1:1 (pixel parameters unscaled, on
    the tile and the margin its filters read, as the thresholds were chosen)."""
    from diqa_edge.data.kadid import KADID_SHORT_SIDE, distort_kadid
    from diqa_edge.training.detail_gate import tile_with_margin

    crop, (top, left) = tile_with_margin(rgb, 256)
    for i, (family, level) in enumerate(faults):
        crop = distort_kadid(crop, family, level, short_side=KADID_SHORT_SIDE, seed=1 + i)
    return crop[top:top + 256, left:left + 256]


@pytest.mark.parametrize("noise_level", [2, 3, 4])
def test_sharpness_is_net_of_noise_so_a_shaken_noisy_tile_reads_as_shaken(noise_level):
    """Low light brings noise and shake together. The grain of the noise is fine detail, so a ratio of raw
    second differences read the sample shaken (KADID motion blur 4: 0.44) and noisy (noise 3) as 1.32,
    sharper than the photo as taken (0.67). Net of what white noise of the measured sigma puts at each
    scale, the shaken tile reads as shaken with or without the noise, and noise alone leaves a sharp tile sharp."""
    clean = measure_detail(_kadid_at_1_to_1(_skin())).sharpness
    shaken = measure_detail(_kadid_at_1_to_1(_skin(), ("motion_blur", 4))).sharpness
    shaken_noisy = measure_detail(_kadid_at_1_to_1(_skin(), ("motion_blur", 4), ("noise", noise_level)))
    noisy = measure_detail(_kadid_at_1_to_1(_skin(), ("noise", noise_level)))
    assert shaken_noisy.noise > 7.0                           # the noise is there, and measured
    assert abs(shaken_noisy.sharpness - shaken) < 0.04        # 0.44 -> 0.41-0.43
    assert shaken_noisy.sharpness < 0.45 < clean              # below every threshold chosen so far (0.46-0.47)
    assert abs(noisy.sharpness - clean) < 0.06                # 0.70 -> 0.72-0.76


def test_a_tile_is_measured_the_way_its_threshold_was_chosen():
    """A manifest without ``sharpness_measure`` chose its threshold on the raw ratio, and the scorer holds its
    photos to that one; this version's rules name the net-of-noise measure."""
    shaken_noisy = _kadid_at_1_to_1(_skin(), ("motion_blur", 4), ("noise", 3))
    raw = measure_detail(shaken_noisy, "raw").sharpness
    net = measure_detail(shaken_noisy, "net-of-noise").sharpness
    assert raw > 1.2 and net < 0.45                    # the noise's grain read as detail, and taken off
    assert measure_detail(shaken_noisy).sharpness == net
    assert DetailRule.from_dict({"sharpness_min": 0.47}).sharpness_measure == "raw"
    assert DetailRule.from_dict({"sharpness_min": 0.47, "sharpness_measure": "net-of-noise"}).sharpness_measure \
        == "net-of-noise"
    assert DetailRule(sharpness_min=0.46).to_dict()["sharpness_measure"] == "net-of-noise"
    with pytest.raises(ValueError, match="unknown sharpness measure"):
        measure_detail(shaken_noisy, "laplacian-v9")


def test_the_rule_sends_back_what_the_model_accepts_only_when_the_tile_fails():
    rule = RetakeRule.from_dict({"version": 1, "score_threshold": 5.0, "reason_thresholds": {"dark": 0.7},
                                 "detail": {"noise_max": 14.0, "sharpness_min": 0.47}})
    fine, noisy, soft = DetailStats(3.0, 0.8), DetailStats(20.0, 1.6), DetailStats(1.0, 0.4)
    assert rule.decide(6.0, {"dark": 0.1}, fine) == (True, None)
    assert rule.decide(6.0, {"dark": 0.1}, noisy) == (False, "noise")
    assert rule.decide(6.0, {"dark": 0.1}, soft) == (False, "blur")
    assert rule.decide(6.0, {"dark": 0.1}, DetailStats(1.0, None)) == (True, None)   # no structure: not judged
    assert rule.decide(6.0, {"dark": 0.9}, soft) == (False, "dark")     # the model's reason comes first
    assert rule.decide(4.0, {"dark": 0.1}, soft) == (False, None)       # sent back by its score
    assert rule.decide(6.0, {"dark": 0.1}) == (True, None)              # not measured: the model's answer
    # written before the measure had a name: held to the raw measure it was chosen on
    assert rule.to_dict()["detail"] == {"noise_max": 14.0, "sharpness_min": 0.47, "sharpness_measure": "raw"}
    assert RetakeRule.from_dict({"score_threshold": 5.0}).detail is None


@pytest.mark.parametrize("detail, expected", [
    ({"noise_max": 14.0, "sharpness_measure": "laplacian-v9"}, "does not know"),
    ({"noise_max": float("nan")}, "finite number"),
    ({"noise_max": -3}, "must lie in"),
    ({"sharpness_min": 5}, "must lie in"),
    ({"noise_max": 14.0, "sharpnes_min": 0.4}, "unknown key"),
    ([0.4], "JSON object"),
])
def test_a_manifest_with_a_bad_detail_rule_is_refused(detail, expected):
    doc = json.loads(ModelManifest(Contract(), RetakeRule(5.0)).to_json())
    doc["rule"]["detail"] = detail
    with pytest.raises(ModelLoadError, match=expected):
        ModelManifest.from_json(json.dumps(doc).encode())


def test_the_tile_size_is_validated_and_changes_no_pixel_of_the_models_input():
    assert Contract(detail_tile=0).fingerprint() == Contract(detail_tile=256).fingerprint() == Contract().fingerprint()
    for bad in (10, 258, -4, True, 8192):
        with pytest.raises(ContractError, match="detail_tile"):
            Contract(detail_tile=bad)


@pytest.fixture(scope="module")
def bundled():
    from diqa_edge.sdk.scorer import QualityScorer

    try:
        return QualityScorer.bundled()
    except Exception as exc:      # an SDK install without a runtime for the bundled file
        pytest.skip(f"bundled model not loadable here: {exc}")


def test_the_bundled_model_looks_at_1_to_1(bundled):
    assert bundled.rule.detail is not None and bundled.contract.detail_tile == 256
    result = bundled.score(SKIN)
    assert result.acceptable and result.detail["sent_back"] is None
    assert result.detail["noise"] < bundled.rule.detail.noise_max
    assert result.detail["sharpness"] > bundled.rule.detail.sharpness_min


def test_faults_that_only_show_at_full_size_are_sent_back_with_their_hint(bundled):
    """The sample enlarged 4x (what the model sees at 512 px is as sharp as the original), and with heavy
    noise added at full size (shrunk 8x, most of it averages away before the model sees it)."""
    from diqa_edge.sdk.hints import HINTS

    big = np.asarray(Image.fromarray(_skin()).resize((4096, 3076), Image.Resampling.BICUBIC))
    soft = bundled.score(big)
    assert soft.score >= bundled.threshold               # the model alone would accept it
    assert (soft.acceptable, soft.top_reason, soft.detail["sent_back"]) == (False, "blur", "blur")
    assert soft.hint == HINTS["blur"].hint

    rng = np.random.default_rng(0)
    grainy = np.clip(big + rng.normal(0, 25, big.shape), 0, 255).astype(np.uint8)
    noisy = bundled.score(grainy)
    assert (noisy.acceptable, noisy.top_reason) == (False, "noise")
    assert noisy.detail["noise"] > bundled.rule.detail.noise_max
    assert noisy.hint == HINTS["noise"].hint


def test_a_photo_shaken_in_low_light_is_sent_back_though_its_noise_looks_like_detail(bundled):
    """The sample photo at its own size (1024 x 769) with KADID's motion blur at level 4 and white noise at
    level 3 on top (the camera's "shake with noise" at level 4, built at 1:1): the bundled rule holds its
    tile to the net-of-noise measure, which reads it as shaken."""
    from diqa_edge.data.kadid import KADID_SHORT_SIDE, distort_kadid

    assert bundled.rule.detail.sharpness_measure == "net-of-noise"
    shaken = distort_kadid(_skin(), "motion_blur", 4, short_side=KADID_SHORT_SIDE, seed=1)
    result = bundled.score(distort_kadid(shaken, "noise", 3, short_side=KADID_SHORT_SIDE, seed=2))
    assert result.detail["noise"] > 7.0 and result.detail["sharpness"] < bundled.rule.detail.sharpness_min
    assert not result.acceptable


@pytest.mark.parametrize("detail, contract, expected", [
    ({}, {}, "names no threshold"),
    ({"chosen_on": "x"}, {}, "names no threshold"),
    ({"noise_max": 14.0, "tile": 128}, {}, "chosen on another tile"),
    ({"noise_max": 14.0}, {"decode": "jpeg_draft"}, "own pixels"),
    ({"noise_max": 14.0}, {"detail_tile": 0}, "own pixels"),
])
def test_a_detail_rule_the_sdk_cannot_apply_as_chosen_is_refused(detail, contract, expected):
    doc = json.loads(ModelManifest(Contract(**contract), RetakeRule(5.0)).to_json())
    doc["rule"]["detail"] = detail
    with pytest.raises(ModelLoadError, match=expected):
        ModelManifest.from_json(json.dumps(doc).encode())


def test_half_a_rule_applies_and_prints_only_its_half():
    rule = DetailRule.from_dict({"noise_max": 14.0})
    assert rule.describe() == "noise > 14.00"
    assert rule.trigger(DetailStats(20.0, 0.1)) == "noise" and rule.trigger(DetailStats(3.0, 0.1)) is None
    assert DetailRule.from_dict({"sharpness_min": 0.47}).describe() == "sharpness < 0.47"
    assert DetailRule.from_dict({"chosen_on": "x"}) is None


def test_preview_frames_are_not_judged_at_1_to_1_unless_asked(bundled):
    """A preview frame's pixels are the preview stream's, not the photo the dermatologist receives."""
    big = np.asarray(Image.fromarray(_skin()).resize((4096, 3076), Image.Resampling.BICUBIC))[998:2078, 1088:3008]
    frame = bundled.score_frame(big)
    assert frame.detail is None
    asked = bundled.score_frame(big, look_at_1to1=True)
    assert asked.detail is not None and asked.detail["sharpness"] < bundled.rule.detail.sharpness_min
    assert (asked.acceptable, asked.top_reason) == (False, "blur")
