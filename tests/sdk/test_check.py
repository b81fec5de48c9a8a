"""A manifest is bound to its model: the model's outputs on a fixed synthetic input are in the manifest, and
the SDK refuses a manifest beside a model that does not answer them (issue 32: a foreign model with our
shapes was scored under our manifest)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from diqa_edge.errors import ModelLoadError
from diqa_edge.sdk.check import check_image
from diqa_edge.sdk.decision import RetakeRule
from diqa_edge.sdk.manifest import ModelManifest, read_sidecar, sidecar_path
from diqa_edge.sdk.scorer import QualityScorer, bundled_model


def test_the_check_input_is_the_documented_formula():
    """An app rebuilds it from the formula in sdk/check.py; these digests pin it."""
    assert hashlib.sha256(check_image(512).tobytes()).hexdigest() == \
        "e064cc2e913c6fc7dfdfbb582b4f171e71680938eedcc5de846f1e97fa6ff570"
    assert hashlib.sha256(check_image(224).tobytes()).hexdigest() == \
        "78801c2dee9768be8d7a9fbea675fd6efa0d90cc9ffe812de072e23bc751dab2"
    img = check_image(512)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8 and 20 < img.std() < 80


@pytest.fixture
def bundled_copy(tmp_path):
    path = bundled_model()
    if path is None or path.suffix != ".tflite":
        pytest.skip("no bundled .tflite in this build")
    pytest.importorskip("ai_edge_litert", reason="the TFLite runtime is not installed")
    copy = tmp_path / "model.tflite"
    shutil.copy(path, copy)
    shutil.copy(sidecar_path(path), sidecar_path(copy))
    return copy


def test_the_bundled_manifest_is_bound_to_its_model(bundled_copy):
    check = read_sidecar(bundled_copy).check
    # int8 kernels may round differently on another CPU: the int8 file's band is 0.1 (export/bind.py)
    assert check["input"] == "bands-v1" and len(check["outputs"]) == 10 and check["tolerance"] == 0.1
    QualityScorer(bundled_copy)          # answers its own check


def test_a_manifest_whose_check_the_model_does_not_answer_is_refused(bundled_copy):
    doc = json.loads(sidecar_path(bundled_copy).read_text())
    answered = doc["check"]["outputs"][0]       # what the bundled file answers on the check input
    doc["check"]["outputs"][0] += 0.25          # as another model's score would differ
    sidecar_path(bundled_copy).write_text(json.dumps(doc))
    # the file's own answer may differ from the stored one within the check's tolerance on another CPU
    with pytest.raises(ModelLoadError, match=rf"does not answer its manifest's check input.*score "
                                             rf"\d+\.\d{{4}} \(manifest {answered + 0.25:.4f}\)"):
        QualityScorer(bundled_copy)


def test_a_foreign_model_with_our_shapes_is_refused(tmp_path):
    """What the issue measured: another network with the bundled model's input and output shapes, placed
    beside the bundled manifest."""
    torch = pytest.importorskip("torch", reason="full install only (builds the foreign model)")
    path = bundled_model()
    if path is None:
        pytest.skip("no bundled model in this build")

    class Foreign(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=(1, 2, 3)).unsqueeze(1)
            return torch.cat([5 + m, torch.sigmoid(m).repeat(1, 9)], dim=1)

    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(Foreign(), torch.zeros(1, 3, 512, 512), str(foreign), opset_version=17, dynamo=False,
                      input_names=["image"], output_names=["outputs"])
    shutil.copy(sidecar_path(path), sidecar_path(foreign))
    with pytest.raises(ModelLoadError, match="check input.*belongs to another model"):
        QualityScorer(foreign)


@pytest.mark.parametrize("check, expected", [
    ({"input": "stripes-v9", "outputs": [1.0, 0.5], "tolerance": 0.05}, "newer diqa-edge"),
    ({"input": "bands-v1", "outputs": [1.0], "tolerance": 0.05}, "must list 2 numbers"),
    ({"input": "bands-v1", "outputs": [1.0, float("nan")], "tolerance": 0.05}, "finite number"),
    ({"input": "bands-v1", "outputs": [1.0, 0.5], "tolerance": 0}, "tolerance"),
])
def test_a_damaged_check_is_refused_by_name(check, expected):
    from diqa_edge.contract import Contract

    doc = json.loads(ModelManifest(Contract(), RetakeRule(5.0), outputs=("score", "blur")).to_json())
    doc["check"] = check
    with pytest.raises(ModelLoadError, match=expected):
        ModelManifest.from_json(json.dumps(doc).encode())


@pytest.mark.parametrize("seed", range(4))
def test_random_foreign_networks_with_our_shapes_are_all_refused(tmp_path, seed):
    """Fuzzing the pair (issue 32, item 5): small networks with random weights, our input and output shapes,
    the score in our range and probabilities from a sigmoid, beside the bundled manifest."""
    torch = pytest.importorskip("torch", reason="full install only (builds the foreign models)")
    path = bundled_model()
    if path is None:
        pytest.skip("no bundled model in this build")
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 10))

    class Foreign(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            z = self.net(x)
            return torch.cat([5.5 + 4 * torch.tanh(z[:, :1]), torch.sigmoid(z[:, 1:])], dim=1)

    foreign = tmp_path / f"foreign{seed}.onnx"
    torch.onnx.export(Foreign(), torch.zeros(1, 3, 512, 512), str(foreign), opset_version=17, dynamo=False,
                      input_names=["image"], output_names=["outputs"])
    shutil.copy(sidecar_path(path), sidecar_path(foreign))
    with pytest.raises(ModelLoadError, match="check input"):
        QualityScorer(foreign)
