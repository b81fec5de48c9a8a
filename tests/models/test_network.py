"""Backbones: packaged ImageNet weights really map into timm (a real photo is classified right)."""

from __future__ import annotations

import warnings

import pytest
import torch

from conftest import SAMPLES
from diqa_edge.contract import IMAGENET_MEAN
from diqa_edge.sdk.preprocess import preprocess
from diqa_edge.models.network import RandomInitWarning, build_model, contract_for, imagenet_classifier

# ImageNet-1k class indices: 281-285 domestic cats, 967 espresso, 968 cup,
# 657 missile, 744 projectile, 812 space shuttle.
PHOTOS = {"photo_chelsea.jpg": {281, 282, 283, 284, 285}, "photo_coffee.jpg": {967, 968},
          "photo_rocket.jpg": {657, 744, 812}}


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_packaged_lite_weights_classify_real_photos(backbone):
    model = imagenet_classifier(backbone)
    contract = contract_for(backbone)
    for photo, classes in PHOTOS.items():
        x = torch.from_numpy(preprocess(SAMPLES / photo, contract))
        with torch.inference_mode():
            top5 = set(model(x).topk(5).indices[0].tolist())
        assert top5 & classes, (backbone, photo, sorted(top5))


def test_contract_per_backbone_comes_from_timm():
    assert contract_for("efficientnet_lite0").input_size == 224
    assert contract_for("efficientnet_b3").input_size == 288
    assert contract_for("efficientnet_b5").input_size == 448
    assert contract_for("efficientnet_lite0", 320).input_size == 320
    assert contract_for("efficientnet_b0").mean == IMAGENET_MEAN


def test_head_and_random_init_warning():
    with pytest.warns(RandomInitWarning, match="RANDOM"):
        built = build_model("efficientnet_b0", pretrained=True)   # no offline B0 weights
    assert built.weights == "random initialisation"
    head = [m for m in built.model.head if isinstance(m, torch.nn.Linear)]
    assert [l.out_features for l in head] == [512, 128, 1]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in built.model.head) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Lite0 has packaged weights: no warning
        lite = build_model("efficientnet_lite0")
    assert "ImageNet" in lite.weights
    lite.model.eval()
    lite.model.set_output_bias(5.5)
    assert lite.model(torch.zeros(1, 3, 224, 224)).shape == (1, 1)
