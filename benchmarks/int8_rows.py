"""Integer quantisation of the shipped feature model, lever by lever (issue 22, item 1).

Each row is one TFLite file made from the same saved model (onnx2tf's conversion of the shipped
run), scored on the same held-out crops against the float32 file: ranking (SROCC of scores),
largest score change, same accept / retake answer and same hint under the manifest's rule,
SROCC against the labels (BIQ2021 MOS; the skin views' KADID-anchored labels) beside float32's,
and inference time at 2 and 1 threads. Rows:
- all-int8: every op in int8 (the converter's full-integer path);
- trunk: the backbone in int8, everything from the pooling on in float;
- trunk+stem: and the first 2 / 3 / 4 convolutions in float (the shipped recipe is 2);
- calibration: 120 or 240 training images (BIQ2021 photos and skin views), or the 54 images that ship
  with the repository (samples and their fault views), which the shipped file uses so that anyone
  can rebuild it;
- per-tensor instead of per-channel weights.

    python benchmarks/int8_rows.py --out benchmarks/results/int8_rows.json    # about 12 minutes here
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from diqa_edge.cachedir import cache_root

ROOT = Path(__file__).resolve().parents[1]
WORK = cache_root() / "int8-rows"     # DIQA_EDGE_CACHE, as every cache of the package
# name: (stem convolutions kept float, pooling and heads float, per-channel, calibration set, images)
ROWS = {
    "all-int8": (0, False, True, "train", 240),
    "trunk, 120 calibration": (0, True, True, "train", 120),
    "trunk, 240 calibration": (0, True, True, "train", 240),
    "trunk+stem2, 240 calibration": (2, True, True, "train", 240),
    "trunk+stem2, per-tensor": (2, True, False, "train", 240),
    "trunk+stem2, 54 bundled (shipped recipe)": (2, True, True, "bundled", 54),
    "trunk+stem3, 54 bundled": (3, True, True, "bundled", 54),
    "trunk+stem4, 54 bundled": (4, True, True, "bundled", 54),
}


def crops_of(records, contract) -> np.ndarray:
    from diqa_edge.sdk.decode import decode_image
    from diqa_edge.sdk.preprocess import resize_and_crop

    return np.stack([resize_and_crop(decode_image(r.image if hasattr(r, "image") else r, contract), contract)
                     for r in records])


def held_out_and_calibration(trained, n_eval: int):
    """(eval crops, eval records, calibration crops by set name): the run's own test and training parts,
    half BIQ2021 photos, half skin views; and the bundled parity set."""
    from diqa_edge.data.records import seeded_subsample
    from diqa_edge.data.splits import run_split_part
    from diqa_edge.export.parity import bundled_parity_set

    def halves(part, n):
        recs = run_split_part(trained.card, part)
        return (seeded_subsample([r for r in recs if not r.pseudo], n, 1)
                + seeded_subsample([r for r in recs if r.pseudo], n, 1))

    test = halves("test", n_eval // 2)
    calib = {"train": crops_of(halves("train", 120), trained.contract),
             "bundled": crops_of(bundled_parity_set(WORK / "bundled").paths, trained.contract)}
    return crops_of(test, trained.contract), test, calib


def float_saved_model(trained, folder: Path, calib: np.ndarray) -> Path:
    """onnx2tf's float conversion of the model (saved model + float32 .tflite), once per folder."""
    from diqa_edge.export.onnx_target import export_onnx
    from diqa_edge.export.tflite_target import _convert

    tf_dir = folder / "tf"
    if not any(tf_dir.glob("*_float32.tflite")):
        onnx = export_onnx(trained, folder).path
        _convert(onnx, calib.astype(np.float32) / 255.0, trained.contract, folder, False, full_integer=False)
    return tf_dir


def row_file(name: str, spec, tf_dir: Path, calib: dict, contract) -> Path:
    from diqa_edge.export.int8_trunk import quantize_trunk

    stem_convs, pooled, per_channel, cal_set, n_cal = spec
    out = WORK / (name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "") + ".tflite")
    if not out.exists():
        crops = calib[cal_set][np.resize(np.random.default_rng(0).permutation(len(calib[cal_set])), n_cal)]
        out.write_bytes(quantize_trunk(tf_dir, crops.astype(np.float32) / 255.0, contract, stem_convs=stem_convs,
                                       pooled=pooled, per_channel=per_channel))
    return out


def outputs(path: Path, crops: np.ndarray, contract) -> np.ndarray:
    from diqa_edge.sdk.preprocess import normalise, to_layout
    from diqa_edge.sdk.runtimes import load_runtime

    runtime = load_runtime(path, threads=2)
    return np.stack([np.asarray(runtime.outputs(to_layout(normalise(c, contract), "NHWC"))).reshape(-1)
                     for c in crops])


def figures(out, ref, mos, skin, names, rule, contract) -> dict:
    from scipy.stats import spearmanr

    s, r = np.clip(out[:, 0], 1, 10), np.clip(ref[:, 0], 1, 10)
    from diqa_edge.sdk.hints import row_answers

    a, b = row_answers(out, rule, names), row_answers(ref, rule, names)
    return {"srocc_vs_fp32": float(spearmanr(s, r)[0]), "max_abs": float(np.abs(s - r).max()),
            "same_answer": float(np.mean([x[0] == y[0] for x, y in zip(a, b)])),
            "same_hint": float(np.mean([x == y for x, y in zip(a, b)])),
            "biq_srocc": float(spearmanr(s[~skin], mos[~skin])[0]), "skin_srocc": float(spearmanr(s[skin], mos[skin])[0])}


def main(argv=None) -> int:
    from diqa_edge.bench import measure
    from diqa_edge.eval.report import markdown_table
    from diqa_edge.models.load import SHIPPED_RUN, load_trained
    from diqa_edge.sdk.runtimes import load_runtime

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=SHIPPED_RUN)
    ap.add_argument("--images", type=int, default=600, help="held-out crops, half BIQ2021, half skin views")
    ap.add_argument("--row", action="append", choices=list(ROWS), default=None, help="a row (repeatable; default: all)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    trained = load_trained(args.checkpoint)
    contract, names = trained.contract, tuple(trained.model.output_names[1:])
    rule = trained.rule
    crops, test, calib = held_out_and_calibration(trained, args.images)
    mos, skin = np.array([r.mos for r in test]), np.array([r.pseudo for r in test])
    tf_dir = float_saved_model(trained, WORK, calib["train"])
    float32 = next(tf_dir.glob("*_float32.tflite"))
    ref = outputs(float32, crops, contract)
    files = {"float32": float32, "float16 (the previous shipped precision)": next(tf_dir.glob("*_float16.tflite"))}
    files |= {name: row_file(name, ROWS[name], tf_dir, calib, contract) for name in (args.row or ROWS)}
    rows = []
    for name, path in files.items():
        t0 = time.perf_counter()
        row = {"row": name, "size_mb": round(path.stat().st_size / 1e6, 2),
               **figures(outputs(path, crops, contract), ref, mos, skin, names, rule, contract)}
        x = normalise_zero(contract)
        for threads in (2, 1):
            runtime = load_runtime(path, threads=threads)
            row[f"ms_{threads}t"] = measure(lambda: runtime.outputs(x), 30)["median_ms"]
        rows.append(row)
        print(json.dumps(row), f"({time.perf_counter() - t0:.0f} s)", flush=True)
    doc = {"n": len(test), "n_biq2021": int((~skin).sum()), "n_skin": int(skin.sum()), "rows": rows,
           "float32_biq_srocc": rows[0]["biq_srocc"], "float32_skin_srocc": rows[0]["skin_srocc"]}
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print("\n".join(markdown_table(["row", "MB", "SROCC vs fp32", "max |d|", "same answer", "same hint", "BIQ2021 SROCC",
                          "skin SROCC", "ms, 2 threads", "ms, 1 thread"],
                         [[r["row"], r["size_mb"], f"{r['srocc_vs_fp32']:.4f}", f"{r['max_abs']:.2f}",
                           f"{r['same_answer']:.3f}", f"{r['same_hint']:.3f}", f"{r['biq_srocc']:.4f}",
                           f"{r['skin_srocc']:.4f}", f"{r['ms_2t']:.1f}", f"{r['ms_1t']:.1f}"] for r in rows])))
    return 0


def normalise_zero(contract) -> np.ndarray:
    """A model input for timing: a mid-grey crop, normalised (the time does not depend on the pixels)."""
    from diqa_edge.sdk.preprocess import normalise, to_layout

    s = contract.input_size
    return to_layout(normalise(np.full((s, s, 3), 128, np.uint8), contract), "NHWC")


if __name__ == "__main__":
    sys.exit(main())
