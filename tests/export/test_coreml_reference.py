"""The Core ML reference executor (NumPy, op by op) against PyTorch, on the session's real export."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from diqa_edge.sdk.decode import decode_image
from diqa_edge.sdk.preprocess import preprocess_rgb, resize_and_crop

# Same thresholds as the export gate (the fixture's int8 gate, see tests/conftest.py).
LIMITS = {"fp32": ("max_abs", 1e-3), "fp16": ("max_abs", 0.05), "int8": ("srocc", 0.98)}


@pytest.fixture(scope="module")
def reference_setup(exported):
    from diqa_edge.export.trained import load_trained

    trained = load_trained(exported["run"])
    images = sorted(exported["images"].glob("*.png"))[:20]
    rgbs = [decode_image(p, trained.contract) for p in images]
    with torch.inference_mode():
        ref = np.array([float(trained.model(torch.from_numpy(preprocess_rgb(r, trained.contract)))) for r in rgbs])
    return trained, rgbs, ref


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_reference_executor_matches_pytorch(exported, reference_setup, precision):
    from diqa_edge.export.coreml_reference import ReferenceExecutor

    trained, rgbs, ref = reference_setup
    executor = ReferenceExecutor(next(exported["out"].glob(f"*_coreml_{precision}.mlpackage")))
    t0 = time.perf_counter()
    ours = np.array([executor.run(resize_and_crop(rgb, trained.contract)) for rgb in rgbs])
    per_image = (time.perf_counter() - t0) / len(rgbs)
    max_abs, rho = float(np.abs(ours - ref).max()), float(spearmanr(ours, ref)[0])
    print(f"Core ML {precision} (reference executor, not Apple's runtime): max|d| {max_abs:.6f}, "
          f"SROCC {rho:.5f} on {len(rgbs)} images, {per_image:.2f} s/image")
    kind, limit = LIMITS[precision]
    assert (max_abs <= limit) if kind == "max_abs" else (rho >= limit)


def test_an_unknown_op_is_an_error_that_names_it(exported):
    from diqa_edge.export.coreml_reference import ReferenceExecutor, UnknownOpError

    class WithoutConv(ReferenceExecutor):
        _HANDLERS = {k: v for k, v in ReferenceExecutor._HANDLERS.items() if k != "conv"}

    with pytest.raises(UnknownOpError, match="conv"):
        WithoutConv(next(exported["out"].glob("*_coreml_fp32.mlpackage")))
