"""A second opinion on a Core ML conversion: the executor's intermediate values against PyTorch's, layer by layer.

Why layer inputs: batch norm is folded into the convolutions and activations
become separate ops, so the two graphs share no names; what they do share is
the order of their convolutions and linear layers (both are the network's
execution order). The input of layer *i* is the output of everything between
layer *i-1* and it, so the first layer whose input differs points at the
layer before it. The first layer's input is the image after the package's
own preprocessing; comparing it with the contract's normalisation names the
classic conversion faults: swapped colour order, a bias that ignores the
per-channel mean, a wrong scale.

Run ``diqa-edge coreml-layers PACKAGE --checkpoint RUN`` for
the table on one image.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .coreml_reference import ReferenceExecutor

# Relative difference (RMS of delta / RMS of PyTorch) a healthy layer stays under, by compute precision.
# fp32 is where localisation is sharp (healthy layers sit near 1e-6). 8-bit weights move the small
# 128-wide head's inputs by up to ~20 % RMS on a healthy package (measured on the test fixture), so
# the int8 bound only catches gross faults; its score is judged by the SROCC gate.
TOLERANCE = {"fp32": 1e-3, "fp16": 0.05, "int8": 0.3}


@dataclass
class LayerDiff:
    name: str              # the PyTorch module whose input this is ("score" for the output)
    max_abs: float
    rel: float             # RMS of the difference / RMS of PyTorch's values


@dataclass
class LayerReport:
    layers: list[LayerDiff]
    problems: list[str] = field(default_factory=list)
    precision: str = "fp32"

    @property
    def ok(self) -> bool:
        return not self.problems

    def worst(self) -> LayerDiff:
        return max(self.layers, key=lambda d: d.rel)

    def to_dict(self) -> dict:
        w = self.worst()
        return {"ok": self.ok, "problems": self.problems, "worst_layer": w.name, "worst_rel": w.rel,
                "layers": [(d.name, d.max_abs, d.rel) for d in self.layers]}

    def markdown(self) -> str:
        from ..eval.report import cell, markdown_table

        lines = markdown_table(("#", "input of layer", "max abs diff", "relative RMS diff"),
                               ((i, d.name, cell(d.max_abs, ".3g"), cell(d.rel, ".3g"))
                                for i, d in enumerate(self.layers)))
        verdict = "; ".join(self.problems) or f"every layer within {TOLERANCE[self.precision]:g} relative"
        return "\n".join(lines) + f"\n\n{verdict}\n"


def torch_layer_inputs(model, x: np.ndarray) -> tuple[list[tuple[str, np.ndarray]], float]:
    """Inputs of every Conv2d / Linear in execution order, and the model's output, for one NCHW tensor."""
    import torch

    taps: list[tuple[str, np.ndarray]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: taps.append(
        (name, args[0].detach().float().numpy().copy())))
        for name, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.inference_mode():
            out = float(model.eval()(torch.from_numpy(x)).reshape(-1)[0])
    finally:
        for h in hooks:
            h.remove()
    return taps, out


def _image_input_fault(ours: np.ndarray, expected: np.ndarray, tol: float, colour: str, contract) -> str | None:
    """Name what is wrong with the package's preprocessed image, if anything.

    Tries the two channel orders, each up to a per-channel offset (a BGR package also applies its
    bias list in B, G, R order), then a global scale."""
    scale = float(np.abs(expected).max()) or 1.0

    def fits(a, b):
        return np.abs(a - b).max() / scale <= tol

    if fits(ours, expected):
        return None
    for order, ref in (("RGB", expected), ("BGR", expected[:, ::-1])):
        offsets = (ours - ref).mean(axis=(0, 2, 3))
        if not fits(ours, ref + offsets.reshape(1, -1, 1, 1)):
            continue
        if order == "BGR":
            return (f"colour order swapped: the package declares a {colour} image, so the network gets its "
                    "channels reversed; the contract (and training) use RGB")
        applied = offsets - np.asarray(contract.mean)
        return ("per-channel bias wrong: the package adds " + ", ".join(f"{v:+.4f}" for v in applied)
                + " per channel (R, G, B); the contract needs " + ", ".join(f"{-m:+.4f}" for m in contract.mean))
    ratio = float(np.sum(ours * expected) / max(np.sum(expected * expected), 1e-12))
    if fits(ours, ratio * expected):
        return f"input scale wrong: the package's pixels are {ratio:.4g} x the contract's"
    return f"image input differs from the contract's preprocessing (max relative {np.abs(ours - expected).max() / scale:.3g})"


def compare_layers(package: str | Path, model, contract, rgb: np.ndarray,
                   executor: ReferenceExecutor | None = None) -> LayerReport:
    """Per-layer largest difference between the reference executor and PyTorch on one decoded photo."""
    from ..sdk.preprocess import normalise, resize_and_crop, to_layout

    executor = executor or ReferenceExecutor(package)
    manifest = executor.manifest()
    precision = manifest.get("precision", "fp32")
    tol = TOLERANCE.get(precision, TOLERANCE["fp16"])
    crop = resize_and_crop(rgb, contract)
    torch_taps, torch_out = torch_layer_inputs(model, to_layout(normalise(crop, contract), "NCHW"))
    ours_taps: list = []
    ours_out = executor.run(crop, taps=ours_taps)

    problems = []
    if len(ours_taps) != len(torch_taps):
        problems.append(f"the program has {len(ours_taps)} conv/linear layers, PyTorch has {len(torch_taps)}")
    # the package's first layer sees pixel/255 - mean: the contract's std lives in its weights
    folded = manifest.get("extra", {}).get("image_input", {}).get("std_folded_into_first_conv")
    layers = []
    for i, ((name, ref), (_, ours)) in enumerate(zip(torch_taps, ours_taps)):
        if i == 0 and folded:
            ref = ref * np.asarray(folded, np.float32).reshape(1, -1, 1, 1)
        if ref.shape != ours.shape:
            problems.append(f"input of {name}: shape {ours.shape} in the program, {ref.shape} in PyTorch")
            break
        max_abs = float(np.abs(ours - ref).max())
        rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2))) or 1.0
        layers.append(LayerDiff(name, max_abs, float(np.sqrt(np.mean((ours - ref).astype(np.float64) ** 2))) / rms))
        if i == 0:
            fault = _image_input_fault(ours, ref, tol, executor.colour, contract)
            if fault:
                problems.append(fault)
    d = abs(ours_out - torch_out)
    layers.append(LayerDiff("score", d, d / max(abs(torch_out), 1e-6)))
    if not problems:
        bad = next((i for i, layer in enumerate(layers) if layer.rel > tol), None)
        if bad is not None:
            after = torch_taps[bad - 1][0] if bad > 0 else "the image input"
            problems.append(f"first diverges after layer {after} (input of {layers[bad].name} off by "
                            f"{layers[bad].rel:.3g} relative, tolerance {tol:g} for {precision})")
    return LayerReport(layers, problems, precision)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("package", type=Path, help="the .mlpackage written by diqa-edge export")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the training run it was exported from")
    parser.add_argument("--image", type=Path, default=None, help="photo to run (default: the first bundled sample)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every layer is within its tolerance, 2 when one is not (the report names it), as export
    exits 2 for a file that fails its gate."""
    from ..sdk.decode import decode_image
    from .formats import SAMPLES
    from ..models.load import load_trained

    trained = load_trained(args.checkpoint)
    image = args.image or sorted(SAMPLES.glob("*.jpg"))[0]
    report = compare_layers(args.package, trained.model, trained.contract, decode_image(image, trained.contract))
    print(f"{args.package.name} vs PyTorch on {image.name} ({report.precision}):\n")
    print(report.markdown())
    return 0 if report.ok else 2


if __name__ == "__main__":
    from ..commands import run_module

    sys.exit(run_module("python -m diqa_edge.export.coreml_layers (diqa-edge coreml-layers)", add_arguments, run,
                        "Compare a Core ML package with its PyTorch model layer by layer (NumPy reference "
                        "executor, no macOS needed)."))
