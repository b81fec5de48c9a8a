"""Would a nonlinear reasons head catch the phone faults the linear one lets through (issue 31)?

The shipped reasons heads are one logistic regression per reason on the frozen trunk's pooled statistics.
Here each reason also gets a one-hidden-layer network (256 ReLU units, scikit-learn's ``MLPClassifier``,
early stopping) fitted on the same rows: the run's skin training views (dermoscopy and phone, both sets'
training parts) and its good BIQ2021 training photos, with the same targets (``reason_targets``). A head that
exports as two dense layers, so it would fit the phone file if it helped.

Judged like ``benchmarks/phone_gate.py``: every fault family at levels 4 and 5 built on each of the phone
test part's photos (patients no model trained on; the same seeds), and those photos as taken. The score
column and the score threshold are the shipped ones. Each network reason's threshold is set where it sends
back the same share of the calibration's good views (validation pristine skin views and good natural
photos) as the shipped threshold sends back with the linear head: the same false-retake budget per reason.
The model's part of the rule only (no 1:1 look) for both heads, so the rows compare the heads.

    python benchmarks/nonlinear_reasons_rows.py --out benchmarks/results/nonlinear_reasons_rows.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "diqa_edge" / "models" / "run"


def run_parts(run: Path, phone_set: Path):
    """(trained run, its config, its parts' cached features): train and val of every set."""
    from diqa_edge.cachedir import data_root, skin_set_dir
    from diqa_edge.models.load import load_trained
    from diqa_edge.training.feature_model import FeatureModelConfig, cached_parts, load_parts

    trained = load_trained(run)
    size = trained.contract.input_size
    config = FeatureModelConfig.from_card(run / "card.json", {"biq2021": str(data_root() / "biq2021"),
                                                              "derm": str(skin_set_dir(size)), "phone": str(phone_set)})
    parts, _, _ = cached_parts(config, load_parts(config), progress=True, parts_wanted=("train", "val"))
    return trained, config, parts


def fit_networks(parts: dict, reasons: tuple[str, ...]) -> tuple:
    """(mean, scale, {reason: fitted network}) on the reasons' training rows."""
    from sklearn.neural_network import MLPClassifier

    from diqa_edge.training.feature_model import merged_skin, reason_rows, reason_targets, standardisation

    x, records = reason_rows(merged_skin(parts["train"]))
    mean, scale = standardisation(x.astype(np.float64))
    xs = ((x - mean) / scale).astype(np.float32)
    targets, used = reason_targets(records)
    nets = {}
    for k, reason in enumerate(tqdm(reasons, desc="networks", unit="reason")):
        y = targets[used[:, k], k]
        if len(np.unique(y)) < 2:
            continue
        nets[reason] = MLPClassifier((256,), alpha=1e-3, early_stopping=True, random_state=0,
                                     max_iter=200).fit(xs[used[:, k]], y)
    return mean, scale, nets


def network_outputs(base: np.ndarray, features: np.ndarray, mean, scale, nets: dict, reasons) -> np.ndarray:
    """The shipped outputs with each fitted reason's column replaced by its network's probability."""
    out = base.copy()
    xs = ((features - mean) / scale).astype(np.float32)
    for reason, net in nets.items():
        out[:, 1 + reasons.index(reason)] = net.predict_proba(xs)[:, 1]
    return out


def matched_thresholds(rule, shipped: np.ndarray, networks: np.ndarray, reasons, nets) -> dict:
    """Each network reason's threshold at the shipped threshold's share of the good views (the rows of both
    arrays) sent back."""
    thresholds = dict(rule.reason_thresholds)
    for reason in nets:
        if reason not in thresholds:
            continue
        col = 1 + reasons.index(reason)
        share = float((shipped[:, col] > thresholds[reason]).mean())
        thresholds[reason] = float(np.quantile(networks[:, col], 1 - share)) if share > 0 else \
            float(networks[:, col].max())
    return thresholds


def calibration_good(parts: dict):
    """Validation pristine skin views and good natural photos: the views whose false retakes are matched."""
    from diqa_edge.training.feature_model import good_natural, merged_skin

    val = merged_skin(parts["val"])
    skin = val["derm"]
    pristine = np.array([r.distortion in (None, "none") for r in skin.records])
    natural = good_natural(val.get("biq2021"))
    return np.concatenate([skin.features[pristine]] + ([natural.features] if natural.records else []))


def view_features(trained, photos, faults) -> dict:
    """Pooled statistics of each phone test photo as taken and of each (family, level) view built on it."""
    import torch

    from diqa_edge.bench_phone import fault_view
    from diqa_edge.sdk.preprocess import preprocess_rgb

    def features(rgb):
        x = torch.from_numpy(preprocess_rgb(rgb, trained.contract, layout="NCHW"))
        with torch.inference_mode():
            return trained.model.trunk(x).numpy()[0]

    found = {("as taken", 0): np.stack([features(rgb) for _, rgb in photos])}
    for family, level in tqdm(faults, desc="views", unit="fault", mininterval=10):
        found[(family, level)] = np.stack([
            features(fault_view(p, rgb, family, level)) for p, rgb in photos])
    return found


def main(argv: list[str] | None = None) -> int:
    from diqa_edge.bench_phone import fault_list, test_photos
    from diqa_edge.cachedir import data_root, phone_set_dir
    from diqa_edge.data.distort import REASONS
    from diqa_edge.sdk.decision import RetakeRule
    from diqa_edge.sdk.decode import decode_image

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=RUN, help="the feature-model run (default: the shipped one)")
    parser.add_argument("--phone-set", type=Path, default=phone_set_dir())
    parser.add_argument("--phone-dir", type=Path, default=data_root() / "pad-ufes-phone")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "nonlinear_reasons_rows.json")
    args = parser.parse_args(argv)
    t0 = time.time()
    trained, config, parts = run_parts(args.run, args.phone_set)
    mean, scale, nets = fit_networks(parts, REASONS)
    linear = trained.model.outputs_of_features
    good = calibration_good(parts)
    good_linear = linear(good)
    good_network = network_outputs(good_linear, good, mean, scale, nets, REASONS)
    rules = {"linear (shipped)": trained.rule,
             "network": RetakeRule(trained.rule.score_threshold,
                                   matched_thresholds(trained.rule, good_linear, good_network, REASONS, nets))}
    photos, _ = test_photos(args.phone_set, args.phone_dir)
    decoded = [(p, decode_image(p, trained.contract)) for p in photos]
    views = view_features(trained, decoded, fault_list((4, 5)))
    rows = {}
    for (family, level), feats in views.items():
        base = linear(feats)
        outputs = {"linear (shipped)": base, "network": network_outputs(base, feats, mean, scale, nets, REASONS)}
        rows[f"{family}_{level}" if level else family] = {
            name: round(float(rules[name].retake_mask(out, REASONS).mean()), 3) for name, out in outputs.items()}
    for name, rule in rules.items():
        out = good_linear if name.startswith("linear") else good_network
        rows.setdefault("calibration good views sent back", {})[name] = round(float(rule.retake_mask(out, REASONS).mean()), 4)
    result = {"run": str(args.run), "phone_test_photos": len(photos), "seconds": round(time.time() - t0),
              "network_thresholds": rules["network"].reason_thresholds,
              "rows (share sent back; 'as taken': of good photos)": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'view':28s} {'linear':>8s} {'network':>8s}")
    for key, row in rows.items():
        print(f"{key:28s} {row['linear (shipped)']:8.3f} {row['network']:8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
