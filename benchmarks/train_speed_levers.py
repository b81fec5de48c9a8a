"""CPU training speed, lever by lever: the real trainer on real photos, one epoch per setting.

Why not ``train_throughput.py``: that one times the model step on random
tensors; a CPU run is also paying for JPEG decode and resize, which is what
the resized-image cache and data-loader workers are for. Each row here is
``diqa_edge.training.trainer.train`` on the same images, adding one lever to
the row above, and reports the images/s of its epoch (forward, backward,
AdamW step and the data path; validation excluded).

Usage: python benchmarks/train_speed_levers.py [--images 160] [--size 224] [--dataset-dir ../shared/data/biq2021]
Run it on a quiet machine: anything else on the cores lowers every row.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

from diqa_edge.cachedir import data_root

# (label, TrainConfig changes): each row keeps the levers above it
LEVERS = [
    ("before: NCHW, decode + resize every image, no workers", {}),
    ("+ resized-image cache (warm)", {"cache": True}),
    ("+ channels_last", {"cache": True, "channels_last": True}),
    ("+ 2 data-loader workers", {"cache": True, "channels_last": True, "num_workers": 2}),
    ("bf16 autocast (instead of fp32)", {"cache": True, "channels_last": True, "bf16": True}),
]


def epoch_speed(records, size: int, cache_dir: str | None, **changes) -> float:
    from diqa_edge.training.trainer import TrainConfig, train

    config = TrainConfig(backbone="efficientnet_lite0", input_size=size, pretrained=True, epochs=1, batch_size=32,
                         cache_dir=cache_dir, progress=False, **changes)
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(records, records[:2], config, Path(out))
    return result.history[0]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=160, help="training images per row (default 160)")
    parser.add_argument("--bf16-images", type=int, default=64, help="fewer for the bf16 row, slow on AVX2")
    parser.add_argument("--size", type=int, default=224, help="input size (default 224)")
    parser.add_argument("--dataset-dir", type=Path, default=data_root() / "biq2021")
    args = parser.parse_args()

    import torch

    from diqa_edge.data.cache import ResizedImageCache
    from diqa_edge.data.registry import load_dataset
    from diqa_edge.training.inputs import TRAIN_RESIZE_FACTOR
    from diqa_edge.models.network import contract_for

    records = load_dataset("biq2021", args.dataset_dir).records[:args.images]
    print(f"CPU, {torch.get_num_threads()} threads; Lite0 at {args.size} px, batch 32, {len(records)} BIQ2021 "
          "photos, one epoch per row")
    print("| setting | images/s | vs before |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as cache_dir:
        contract = contract_for("efficientnet_lite0", args.size)
        warm = ResizedImageCache(cache_dir, contract, round(TRAIN_RESIZE_FACTOR * args.size))
        for r in records:
            warm.get(r.image)
        before = None
        for label, lever in LEVERS:
            changes = {k: v for k, v in lever.items() if k != "cache"}
            subset = records[:args.bf16_images] if lever.get("bf16") else records
            speed = epoch_speed(subset, args.size, cache_dir if lever.get("cache") else None, **changes)
            before = before or speed
            print(f"| {label} | {speed:.1f} | {speed / before:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
