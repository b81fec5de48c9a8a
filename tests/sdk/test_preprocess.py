"""Preprocessing against values computed independently of the SDK's code path.

The reference below is written from docs/preprocessing.md (triangle filter,
support scaled by the downscale factor, sample centres at (i + 0.5) * scale,
horizontal pass then vertical pass, each rounded to uint8), in float64 numpy
with no Pillow call. If the docs and the SDK ever disagree, this fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import gradient_image
from diqa_edge.contract import Contract
from diqa_edge.sdk.decode import decode_image
from diqa_edge.sdk.preprocess import (normalise, preprocess, preprocess_rgb, resize_and_crop,
                                      resized_size)

C = Contract(input_size=224)   # pinned: the expected shapes and sizes below are written for 224


def _weights(n_in: int, n_out: int) -> np.ndarray:
    scale = n_in / n_out
    support = max(scale, 1.0)  # triangle radius, in source pixels
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        xs = np.arange(lo, hi)
        taps = np.clip(1.0 - np.abs((xs - centre + 0.5) / support), 0.0, None)
        w[i, lo:hi] = taps / taps.sum()
    return w


def reference_resize(rgb: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = rgb.astype(np.float64)
    if new_w != w:
        out = np.floor(np.einsum("ox,yxc->yoc", _weights(w, new_w), out) + 0.5).clip(0, 255)
    if new_h != h:
        out = np.floor(np.einsum("oy,yxc->oxc", _weights(h, new_h), out) + 0.5).clip(0, 255)
    return out.astype(np.uint8)


def reference_model_input(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    new_w, new_h = (w * size // h, size) if h <= w else (size, h * size // w)
    resized = reference_resize(rgb, new_w, new_h)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    crop = resized[top:top + size, left:left + size] / 255.0
    x = (crop - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return x.transpose(2, 0, 1)[None]


def test_resize_rule_keeps_aspect_with_floor():
    assert resized_size(4032, 3024, 224) == (298, 224)   # 4032 * 224 / 3024 = 298.67
    assert resized_size(3024, 4032, 224) == (224, 298)
    assert resized_size(512, 512, 224) == (224, 224)
    assert resized_size(500, 100, 224) == (1120, 224)     # upscales a small image too


@pytest.mark.parametrize("w, h", [(512, 384), (301, 457), (224, 224), (150, 120), (1000, 241)])
def test_crop_matches_the_documented_algorithm(w, h):
    rgb = gradient_image(w, h, seed=w + h)
    ours = resize_and_crop(rgb, C)
    ref = (reference_model_input(rgb, 224)[0].transpose(1, 2, 0)
           * np.array(C.std) + np.array(C.mean)) * 255
    diff = np.abs(ours.astype(np.float64) - np.rint(ref))
    # Pillow computes the weights in 22-bit fixed point, the reference in
    # float64: a pixel may round the other way at an exact .5, never more.
    assert diff.max() <= 1, diff.max()
    assert (diff > 0).mean() < 0.01


def test_model_input_on_real_photos_matches_reference(sample_photos):
    worst = 0.0
    for photo in sample_photos[:4]:
        rgb = decode_image(photo, C)
        ours = preprocess_rgb(rgb, C)
        ref = reference_model_input(rgb, C.input_size)
        assert ours.shape == (1, 3, 224, 224) and ours.dtype == np.float32
        worst = max(worst, float(np.abs(ours - ref).max()))
    # one uint8 level = 1 / 255 / min(std) = 0.0175 in normalised units
    assert worst <= 1 / 255 / min(C.std) + 1e-5, worst


def test_normalise_is_exact_for_known_values():
    grey = np.full((2, 2, 3), 128, np.uint8)
    got = normalise(grey, C)[0, 0]
    expected = (128 / 255 - np.array(C.mean)) / np.array(C.std)
    assert np.abs(got - expected).max() < 1e-6
    assert got.dtype == np.float32


def test_layouts_hold_the_same_numbers(sample_photos):
    nchw = preprocess(sample_photos[0], C, layout="NCHW")
    nhwc = preprocess(sample_photos[0], C, layout="NHWC")
    assert nhwc.shape == (1, 224, 224, 3)
    assert np.array_equal(nchw.transpose(0, 2, 3, 1), nhwc)


def test_torchvision_antialiased_resize_agrees(sample_photos):
    """A second, independent implementation of the same filter (torchvision, uint8, antialias)."""
    torch = pytest.importorskip("torch", reason="full install only")
    from torchvision.transforms.v2 import functional as F

    rgb = decode_image(sample_photos[1], C)
    h, w = rgb.shape[:2]
    new_w, new_h = resized_size(w, h, 224)
    tv = F.resize(torch.from_numpy(rgb).permute(2, 0, 1), [new_h, new_w],
                  interpolation=F.InterpolationMode.BILINEAR, antialias=True)
    tv = F.center_crop(tv, [224, 224]).permute(1, 2, 0).numpy()
    ours = resize_and_crop(rgb, C)
    assert np.abs(tv.astype(int) - ours).max() <= 1
