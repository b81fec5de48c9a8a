"""Training throughput (forward + backward + AdamW step) per backbone on this machine's device.

Plans a full run: images/s here x the number of training images x epochs.
Random tensors stand in for images: throughput does not depend on pixel values.
Usage: python benchmarks/train_throughput.py [--backbones efficientnet_lite0,efficientnet_b0] [--batch 32]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from diqa_edge.models.network import build_model, contract_for

# Training images of the paper's cross-domain "All" run (70 % of each set; BIQ2021 train+val).
PAPER_ALL_TRAIN_IMAGES = int(0.7 * (10073 + 10125 + 11125 + 20000 + 1800) + 0.875 * 8000)


def measure(backbone: str, batch: int, steps: int, channels_last: bool, device: torch.device) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = build_model(backbone, pretrained=False)
    model = built.model.to(device).train()
    size = built.contract.input_size
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.rand(batch, device=device) * 9 + 1
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step():
        with amp:
            loss = ((model(x).view(-1).float() - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default="efficientnet_lite0,efficientnet_b0")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch}; paper 'All' run = {PAPER_ALL_TRAIN_IMAGES} training images "
          f"x {args.epochs} epochs")
    print("| backbone | input | images/s (fp32) | images/s (channels_last) | 'All' run, hours |")
    print("|---|---|---|---|---|")
    for backbone in args.backbones.split(","):
        size = contract_for(backbone).input_size
        plain = measure(backbone, args.batch, args.steps, False, device)
        cl = measure(backbone, args.batch, args.steps, True, device)
        hours = PAPER_ALL_TRAIN_IMAGES * args.epochs / max(plain, cl) / 3600
        print(f"| {backbone} | {size} | {plain:.1f} | {cl:.1f} | {hours:.1f} |", flush=True)


if __name__ == "__main__":
    main()
