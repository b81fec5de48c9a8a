"""Camera preview frames: YUV 4:2:0 layouts decode to the same RGB, ``score_frame`` scores the same pixels as
``score``, a still scene's score is steady, and ``PreviewGate`` stops an answer flickering."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES, gradient_image
from diqa_edge.errors import ImageDecodeError
from diqa_edge.sdk import QualityScorer
from diqa_edge.sdk.cli import bundled_model
from diqa_edge.sdk.decision import RetakeRule
from diqa_edge.sdk.frames import PreviewGate, rgb_to_yuv420, yuv420_to_rgb
from diqa_edge.sdk.scorer import ScoreResult


def test_the_three_yuv_layouts_give_the_same_rgb_close_to_the_source():
    rgb = gradient_image(64, 48, noise=3)
    decoded = {layout: yuv420_to_rgb(rgb_to_yuv420(rgb, layout), 64, 48, layout) for layout in ("nv21", "nv12", "i420")}
    assert np.array_equal(decoded["nv21"], decoded["nv12"]) and np.array_equal(decoded["nv21"], decoded["i420"])
    # 4:2:0 keeps one colour per 2 x 2 block: a smooth image comes back within a few levels
    assert np.abs(decoded["nv21"].astype(int) - rgb.astype(int)).mean() < 4


def test_jfif_conversion_by_hand():
    """Y 100, Cb 200, Cr 50 -> R = 100 + 1.402 (50 - 128) < 0 -> 0, G = 100 - 0.344136 * 72 + 0.714136 * 78
    = 130.9, B = 100 + 1.772 * 72 = 227.6 (the JFIF formulas, BT.601 full range)."""
    y = np.full((2, 2), 100, np.uint8)
    nv21 = y.tobytes() + bytes([50, 200])       # V then U
    got = yuv420_to_rgb(nv21, 2, 2, "nv21")[0, 0].astype(int)
    assert np.abs(got - [0, 130.9, 227.6]).max() <= 1


@pytest.mark.parametrize("width, height, size, words", [(3, 2, 9, "even sides"), (4, 2, 11, "holds 12 bytes")])
def test_bad_frames_are_typed_errors(width, height, size, words):
    with pytest.raises(ImageDecodeError, match=words):
        yuv420_to_rgb(bytes(size), width, height, "nv21")
    with pytest.raises(ImageDecodeError, match="layout"):
        yuv420_to_rgb(bytes(12), 4, 2, "yuyv")


@pytest.fixture(scope="module")
def scorer():
    return QualityScorer(bundled_model())


def _frame(width=1280, height=720) -> np.ndarray:
    img = Image.open(SAMPLES / "skin_ISIC_0000083.jpg").convert("RGB").resize((width, height))
    return np.asarray(img)


def test_score_frame_scores_the_same_pixels_as_score(scorer):
    rgb = _frame()
    assert scorer.score_frame(rgb).score == pytest.approx(scorer.score(rgb).score, abs=1e-6)
    nv21 = rgb_to_yuv420(rgb, "nv21")
    from_frame = scorer.score_frame(nv21, "nv21", 1280, 720)
    assert from_frame.score == pytest.approx(scorer.score(yuv420_to_rgb(nv21, 1280, 720, "nv21")).score, abs=1e-6)
    # against the RGB it came from, only 4:2:0's lost colour resolution differs (measured 0.085 on a photo)
    assert abs(from_frame.score - scorer.score(rgb).score) < 0.2
    with pytest.raises(ImageDecodeError, match="width and height"):
        scorer.score_frame(nv21, "nv21")


def test_a_still_scene_scores_steadily(scorer):
    """Five NV21 frames of one scene with +-2 levels of sensor noise: the benchmark measured a standard
    deviation of 0.02-0.07 over 30 frames of each sample photo (benchmarks/preview_frames.py)."""
    rgb, rng = _frame(), np.random.default_rng(0)
    scores = []
    for _ in range(5):
        noisy = np.clip(rgb.astype(np.int16) + rng.integers(-2, 3, rgb.shape), 0, 255).astype(np.uint8)
        scores.append(scorer.score_frame(rgb_to_yuv420(noisy, "nv21"), "nv21", 1280, 720).score)
    assert 0 < np.std(scores) < 0.15


def _result(score: float, dark: float) -> ScoreResult:
    return ScoreResult("<f>", score, score, True, 5.0, 0, 0, 0, reasons={"dark": dark})


def test_preview_gate_steadies_a_scene_at_the_threshold():
    rule = RetakeRule(5.0, {"dark": 0.5})
    darks = [0.45, 0.55] * 10                     # raw answers flip on every frame
    raw = [rule.decide(6.0, {"dark": d})[0] for d in darks]
    gate = PreviewGate(rule, window=5, hold=3)
    steady = [gate.update(_result(6.0, d))[0] for d in darks]
    assert sum(a != b for a, b in zip(raw, raw[1:])) == 19
    assert sum(a != b for a, b in zip(steady, steady[1:])) <= 1
    # a real change still comes through, after `hold` frames
    gate = PreviewGate(rule, window=5, hold=3)
    answers = [gate.update(_result(6.0, d)) for d in [0.1] * 5 + [0.9] * 6]
    assert answers[4] == (True, None) and answers[-1] == (False, "dark")


def test_strided_planes_as_android_and_ios_give_them_equal_the_tight_packed_frame(sample_photos):
    """Issue 32: Android's YUV_420_888 buffers (rows padded to a stride, chroma with pixel stride 2 when the
    camera interleaves it, the last row's padding left out) and iOS's CVPixelBuffer planes were refused."""
    from diqa_edge.sdk.frames import rgb_to_yuv420, yuv420_planes_to_rgb, yuv420_to_rgb

    w, h = 320, 240
    rgb = np.asarray(Image.open(sample_photos[0]).convert("RGB").resize((w, h)))
    i420 = np.frombuffer(rgb_to_yuv420(rgb, "i420"), np.uint8)
    y, u, v = i420[: w * h].reshape(h, w), i420[w * h: w * h * 5 // 4].reshape(h // 2, w // 2), i420[w * h * 5 // 4:].reshape(h // 2, w // 2)
    tight = yuv420_to_rgb(i420.tobytes(), w, h, "i420")
    # Android, semi-planar underneath: Y rows padded to 384; U and V views into one interleaved VU buffer
    y_buf = np.zeros((h, 384), np.uint8)
    y_buf[:, :w] = y
    vu = np.zeros((h // 2, 384), np.uint8)
    vu[:, 0:w:2], vu[:, 1:w:2] = v, u
    planes = (y_buf.reshape(-1)[: -(384 - w)], vu.reshape(-1)[1: -(384 - w)], vu.reshape(-1)[: -(384 - w) - 1])
    android = yuv420_planes_to_rgb(planes, w, h, row_strides=(384, 384, 384), pixel_strides=(1, 2, 2))
    # iOS 420f: Y plane and one CbCr plane, bytesPerRow 352
    y_ios = np.zeros((h, 352), np.uint8)
    y_ios[:, :w] = y
    cbcr = np.zeros((h // 2, 352), np.uint8)
    cbcr[:, 0:w:2], cbcr[:, 1:w:2] = u, v
    flat = cbcr.reshape(-1)
    ios = yuv420_planes_to_rgb((y_ios.reshape(-1), flat, flat[1:]), w, h, (352, 352, 352), (1, 2, 2))
    assert np.array_equal(android, tight) and np.array_equal(ios, tight)
    scorer = QualityScorer(bundled_model())
    got = scorer.score_frame(planes, "YUV_420_888", w, h, row_strides=(384, 384, 384), pixel_strides=(1, 2, 2))
    assert got.score == scorer.score_frame(i420.tobytes(), "i420", w, h).score
    with pytest.raises(ImageDecodeError, match="need .* bytes"):
        yuv420_planes_to_rgb((planes[0][:1000], planes[1], planes[2]), w, h, (384, 384, 384), (1, 2, 2))
