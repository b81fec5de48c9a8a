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
    from diqa_edge.models.load import load_trained

    trained = load_trained(exported["run"])
    images = sorted(exported["images"].glob("*.png"))[:20]
    rgbs = [decode_image(p, trained.contract) for p in images]
    with torch.inference_mode():
        ref = np.array([float(trained.model(torch.from_numpy(preprocess_rgb(r, trained.contract))).reshape(-1)[0])
                        for r in rgbs])
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


def test_layer_report_of_the_real_packages(exported, reference_setup):
    """Every layer's input within the precision's tolerance; the fp32 package to about float rounding."""
    from diqa_edge.export.coreml_layers import TOLERANCE, compare_layers

    trained, rgbs, _ = reference_setup
    for precision in ("fp32", "fp16", "int8"):
        report = compare_layers(next(exported["out"].glob(f"*_coreml_{precision}.mlpackage")), trained.model,
                                trained.contract, rgbs[0])
        worst = report.worst()
        print(f"{precision}: {len(report.layers) - 1} layers, worst {worst.name} relative RMS {worst.rel:.2e} "
              f"(tolerance {TOLERANCE[precision]:g})")
        assert report.ok, report.problems
        # 49 conv + 3 score-head linear + the reasons head's linear + the output
        assert report.layers[-1].name == "score" and len(report.layers) == 54
        if precision == "fp32":
            assert worst.rel < 1e-5


PERTURBED = "backbone.blocks.3.0.conv_pw"


@pytest.fixture(scope="module")
def broken_packages(reference_setup, tmp_path_factory):
    """Three deliberately wrong fp32 packages, built the way export builds good ones."""
    import copy

    from diqa_edge.export.coreml_target import _convert, image_input, save_package

    trained, _, _ = reference_setup
    contract = trained.contract
    out = tmp_path_factory.mktemp("broken")
    perturbed = copy.deepcopy(trained.model)
    conv = dict(perturbed.named_modules())[PERTURBED]
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        conv.weight.add_(0.05 * conv.weight.std() * torch.randn(conv.weight.shape, generator=g))
    mean_of_means = float(np.mean(contract.mean))
    builds = {"bgr": (trained.model, image_input(contract, color_layout="BGR")),
              "one-bias": (trained.model, image_input(contract, bias=[-mean_of_means] * 3)),
              "perturbed": (perturbed, None)}
    paths = {}
    for name, (model, image) in builds.items():
        ml, _ = _convert(model, contract, "fp32", image=image)
        paths[name] = out / f"{name}.mlpackage"
        save_package(ml, trained, "fp32", paths[name])
    return paths


@pytest.mark.parametrize("fault, says", [
    ("bgr", "colour order swapped: the package declares a BGR image"),
    ("one-bias", "per-channel bias wrong"),
    ("perturbed", f"first diverges after layer {PERTURBED} "),
])
def test_a_broken_package_is_caught_and_named(broken_packages, reference_setup, fault, says):
    from diqa_edge.export.coreml_layers import compare_layers
    from diqa_edge.export.coreml_reference import ReferenceExecutor

    trained, rgbs, ref = reference_setup
    report = compare_layers(broken_packages[fault], trained.model, trained.contract, rgbs[0])
    print(f"{fault}: {report.problems}")
    assert not report.ok and says in report.problems[0]
    if fault == "one-bias":   # it names the offsets it found: each channel got -mean(mean), not -mean_c
        expected = float(np.mean(trained.contract.mean))
        assert report.problems[0].count(f"{-expected:+.4f}") == 3
    # and the score itself is off by more than the fp32 gate allows, on real images
    executor = ReferenceExecutor(broken_packages[fault])
    ours = np.array([executor.run(resize_and_crop(rgb, trained.contract)) for rgb in rgbs[:5]])
    assert np.abs(ours - ref[:5]).max() > 1e-3


def test_the_feature_models_ops_follow_mil():
    """The ops the frozen feature model adds (stage standard deviations, the SVR's RBF kernel): a strided
    slice with masks and a squeezed axis, sums over axes, exp, sqrt and pow, checked against NumPy."""
    from diqa_edge.export.coreml_reference import ReferenceExecutor as R

    x = np.arange(48, dtype=np.float32).reshape(2, 3, 8)
    a = {"x": x, "begin": [1, 1, 0], "end": [2, 3, 8], "stride": [1, 1, 3],
         "begin_mask": [False, False, True], "end_mask": [False, False, True], "squeeze_mask": [True, False, False]}
    np.testing.assert_array_equal(R._slice_by_index(None, None, a), x[1, 1:3, ::3])
    np.testing.assert_array_equal(R._reduce_sum(None, None, {"x": x, "axes": [1, 2], "keep_dims": True}),
                                  x.sum(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(R._exp(None, None, {"x": -x / 10}), np.exp(-x / 10), rtol=1e-6)
    np.testing.assert_allclose(R._sqrt(None, None, {"x": x}), np.sqrt(x), rtol=1e-6)
    power = R._HANDLERS["pow"]

    class Op:
        outputs = [type("V", (), {"dtype": None})()]
    np.testing.assert_allclose(power(None, Op, {"x": x, "y": np.float32(2)}), x ** 2)
