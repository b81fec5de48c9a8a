"""How far does the int8 input step alone move a model's scores? And invisible noise, for comparison.

Why: the shipped 384-px model failed the full-integer int8 gate (max |Δ| 1.13). This isolates the first
thing full-integer int8 does: round the normalised input to one int8 scale (about 1.1 grey levels per
step), with everything else left in float, and sets it beside +-0.5-level uniform noise.

    python benchmarks/int8_input_step.py RUN_DIR MODEL.onnx [--n 60]

RUN_DIR is the training run (its held-out test part gives the images, as the export's parity gate does);
MODEL.onnx is its fp32 ONNX export (python -m diqa_edge.export --target onnx --precision fp32).
"""
import argparse
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from scipy.stats import spearmanr

from diqa_edge.data.splits import run_split_part
from diqa_edge.export.parity import ParityImages
from diqa_edge.models.load import load_trained
from diqa_edge.sdk.preprocess import preprocess_rgb

warnings.simplefilter("ignore")
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("run", type=Path)
ap.add_argument("onnx", type=Path)
ap.add_argument("--n", type=int, default=60, help="held-out images (the parity gate's default is 60)")
args = ap.parse_args()

trained = load_trained(args.run)
c = trained.contract
images = ParityImages.from_records(run_split_part(trained.card, "test"), args.n, 0)
x = np.concatenate([preprocess_rgb(rgb, c, layout="NCHW") for rgb in images.decoded(c)])
sess = ort.InferenceSession(str(args.onnx))
name = sess.get_inputs()[0].name


def scores(a):
    return np.concatenate([sess.run(None, {name: a[i:i + 1]})[0][:, 0] for i in range(len(a))])


def report(label, out, base):
    d = np.abs(out - base)
    print(f"{label}: SROCC vs float {spearmanr(out, base)[0]:.4f}, max |Δ| {d.max():.4f}, mean |Δ| {d.mean():.4f}")


base = scores(x)
mean, std = np.array(c.mean), np.array(c.std)
lo, hi = float(((0 - mean) / std).min()), float(((1 - mean) / std).max())   # the whole 0-255 range
scale = (hi - lo) / 255.0
zero = np.round(-128 - lo / scale)
xq = ((np.clip(np.round(x / scale + zero), -128, 127) - zero) * scale).astype(np.float32)
print(f"{len(base)} images; int8 input step {scale:.5f} = {scale * 255 * std.min():.2f}-{scale * 255 * std.max():.2f} grey levels")
report("int8 input step only", scores(xq), base)
rng = np.random.default_rng(0)
noise = rng.uniform(-0.5, 0.5, x.shape) / 255.0 / std.reshape(1, 3, 1, 1)
report("+-0.5-level uniform noise", scores((x + noise).astype(np.float32)), base)
