"""The model behind the session-wide export fixture (``exported`` in tests/conftest.py).

Checkpoints stay out of the repository, so the tests build a real network on
the fly: EfficientNet-Lite0 with its packaged ImageNet backbone, and its head
trained (AdamW, dropout, 400 steps) on the pooled features to pseudo-MOS of real
skin photos and their distorted views (blurred, darkened, JPEG), and its reasons
head trained on the same features to those views' families. It is a small
trained regressor, not our quality model, but every layer is one the
converters must get right, its scores spread the way a trained model's do, and
every format has to carry both heads in its one output tensor.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diqa_edge.data.dermset import resize_long_side
from diqa_edge.data.distort import REASONS, distort, reason_target
from diqa_edge.sdk.decode import decode_image
from diqa_edge.sdk.preprocess import preprocess_rgb

VIEWS = [(None, None, 10.0), ("gaussian_blur", 2, 6.0), ("darken", 1, 7.0), ("jpeg", 3, 5.0),
         ("gaussian_blur", 4, 3.0), ("darken", 2, 4.0)]


def make_image_folder(skin_dir: Path, out: Path, first: int, count: int) -> list[tuple[Path, float]]:
    """``count`` skin photos x the views above, as PNG, with their pseudo-MOS (the file name
    ``<photo>__<family>_<level>.png`` says the view, see ``view_family``)."""
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for src in sorted(skin_dir.glob("*.jpg"))[first:first + count]:
        rgb = resize_long_side(decode_image(src, _contract()), 320)
        for family, level, mos in VIEWS:
            view = rgb if family is None else distort(rgb, family, level)
            path = out / f"{src.stem}__{family or 'pristine'}_{level or 0}.png"
            Image.fromarray(view).save(path)
            items.append((path, mos))
    return items


def view_family(path: Path) -> str:
    """The distortion family a fixture image was made with ("none" for the pristine view)."""
    view = path.stem.split("__", 1)[1].rsplit("_", 1)[0]
    return "none" if view == "pristine" else view


def _contract():
    from diqa_edge.models.network import contract_for

    return contract_for("efficientnet_lite0")


def make_run_dir(folder: Path, skin_dir: Path, parity_dir: Path) -> Path:
    from diqa_edge.models.network import build_model
    from diqa_edge.training.trainer import save_weights

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = build_model("efficientnet_lite0", reasons=REASONS)
    model, contract = built.model.eval(), built.contract
    fit_items = make_image_folder(skin_dir, folder / "fit_images", 60, 20)
    parity = make_image_folder(skin_dir, parity_dir, 0, 10)   # 60 other images for calibration and parity
    # the parity images with their pseudo-MOS, as a manifest (what `diqa-edge bench --images` reads)
    (parity_dir / "manifest.csv").write_text("image,mos,pseudo\n" + "".join(
        f"{p.name},{m},1\n" for p, m in parity))
    with torch.inference_mode():
        feats = torch.from_numpy(np.stack([
            model.backbone(torch.from_numpy(preprocess_rgb(decode_image(p, contract), contract)))[0].numpy()
            for p, _ in fit_items]))
    y = torch.tensor([m for _, m in fit_items], dtype=torch.float32)
    # Train the head (dropout, AdamW) on the frozen backbone's pooled features, as the trainer would.
    model.set_output_bias(float(y.mean()))
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=1e-3, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.head.train()
    for _ in range(400):
        idx = torch.randint(0, len(feats), (32,), generator=generator)
        loss = ((model.head(feats[idx]).view(-1) - y[idx]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # the reasons head: logistic regression per reason on the same features
    targets = torch.from_numpy(np.stack([reason_target(view_family(p)) for p, _ in fit_items]))
    head_opt = torch.optim.AdamW(model.reason_head.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(300):
        idx = torch.randint(0, len(feats), (32,), generator=generator)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.reason_head(feats[idx]), targets[idx])
        head_opt.zero_grad()
        loss.backward()
        head_opt.step()
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder / "best.safetensors")
    card = {"backbone": "efficientnet_lite0", "contract": contract.to_dict(),
            "trained_on": ["fixture"], "outputs": list(model.output_names), "split": {"index": 0, "seed": 0}, "dataset_dirs": {},
            "note": "ImageNet Lite0 + head trained on 20 skin photos x 6 views (pseudo-MOS): a test fixture"}
    (folder / "card.json").write_text(json.dumps(card))
    return folder
