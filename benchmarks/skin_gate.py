"""The skin gate's acceptance table: exported model files (the shipped one, the previous one) and the
classical baseline on skin photos none of them trained on.

For every fault family: the retake rate at KADID levels 1..5 with 95 % Wilson
intervals, the ROC AUC faulty-vs-pristine of the score, the pristine accept
rate; one ROC figure per family. Each model applies the rule its own manifest
stores (through ``QualityScorer``, exactly as ``diqa-edge score``); the
baseline (Laplacian variance + brightness) is calibrated on the skin set's
train + val views so 95 % of those pristine photos pass, and applied to the
same test views.

    python benchmarks/skin_gate.py --model diqa_edge/models/default.tflite \
        --model previous=/path/to/old.tflite --out benchmarks/results/skin_gate.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]


def model_outputs(path: Path, records, threads: int = 2):
    """(outputs [score, reasons...], retake mask by the manifest's own rule, reason names, the rule)."""
    from diqa_edge.sdk import QualityScorer

    scorer = QualityScorer(path, threads=threads)
    rows, retake = [], []
    for r in tqdm(records, desc=path.name, unit="img", mininterval=5):
        res = scorer.score(r.image)
        rows.append([res.score] + [res.reasons[k] for k in scorer.manifest.reasons])
        retake.append(not res.acceptable)
    return np.array(rows), np.array(retake), scorer.manifest.reasons, scorer.rule


def baseline_measures(records, contract, cache: Path) -> np.ndarray:
    """Laplacian variance and brightness per view, cached beside the skin set's features."""
    from diqa_edge.eval.baseline import classical_measures

    known = json.loads(cache.read_text()) if cache.exists() else {}
    out = []
    for r in tqdm(records, desc="classical", unit="img", mininterval=5):
        key = f"{r.key}|{contract.fingerprint()}"
        if key not in known:
            known[key] = classical_measures(r.image, contract)
        out.append(known[key])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(known))
    return np.array(out)


def markdown(tables: dict, order: list[str]) -> str:
    fams = sorted(tables[order[0]]["families"])
    head = "| family | " + " | ".join(f"{n}: retake at level 1 / 2 / 3 / 4 / 5 | {n}: AUC, levels 4-5" for n in order) + " |"
    lines = [head, "|---|" + "---|---|" * len(order)]
    for fam in fams:
        cells = []
        for n in order:
            row = tables[n]["families"][fam]
            cells.append(" / ".join(f"{row[str(lv)]['retake']:.2f}" if str(lv) in row else "–" for lv in range(1, 6)))
            cells.append(f"{row.get('auc_severe', float('nan')):.3f}")   # faulty (levels 4-5) vs pristine
        lines.append(f"| {fam} | " + " | ".join(cells) + " |")
    lines.append("| pristine accepted | " + " | ".join(
        f"{tables[n]['pristine']['accept']:.3f} {tables[n]['pristine']['accept_ci']} | " for n in order) + "|")
    return "\n".join(lines) + "\n"


def summary(table: dict) -> dict:
    from diqa_edge.data.kadid import DARKER_TONE   # views with nothing lost: they must pass

    fams = table["families"]
    severe = [fams[f][str(lv)]["retake"] for f in fams for lv in (4, 5) if str(lv) in fams[f]]
    return {"pristine_accept": table["pristine"]["accept"],
            "severe_retake_mean": float(np.mean(severe)), "severe_retake_min": float(np.min(severe)),
            "level1_accept": {f: 1 - fams[f]["1"]["retake"] for f in fams if "1" in fams[f]},   # no-detail: level 5 only
            **({"darker_tone_accept": 1 - float(np.mean([fams[DARKER_TONE][lv]["retake"] for lv in ("1", "2")]))}
               if DARKER_TONE in fams else {})}


def main(argv=None) -> int:
    from diqa_edge.cachedir import cache_root, skin_set_dir
    from diqa_edge.eval.baseline import calibrate
    from diqa_edge.eval.gate import Views, acceptance_table, gate_badness, roc_figure
    from diqa_edge.fileio import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, metavar="[NAME=]PATH",
                    help="an exported model with its manifest (repeatable); NAME labels its columns")
    ap.add_argument("--skin-set", type=Path, default=skin_set_dir(), help="a make-skin-set folder")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "skin_gate.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "skin_gate_roc.png")
    ap.add_argument("--limit-photos", type=int, default=None, help="only the first N test photos (quick look)")
    args = ap.parse_args(argv)

    from diqa_edge.data.splits import skin_set_parts

    parts = skin_set_parts(args.skin_set)
    test = parts["test"]
    if args.limit_photos:
        keep = sorted({r.group for r in test})[:args.limit_photos]
        test = [r for r in test if r.group in keep]
    views = Views.of(test)
    tables, curves, results = {}, {}, {}
    for item in args.model:
        name, _, path = item.rpartition("=")
        path = Path(path)
        name = name or path.stem
        outputs, retake, reasons, rule = model_outputs(path, test)
        badness = gate_badness(outputs, rule, tuple(reasons))
        tables[name] = acceptance_table(retake, views, badness=badness)
        score_only = acceptance_table(retake, views, badness=-outputs[:, 0])
        for fam, row in tables[name]["families"].items():
            row["auc_score"] = score_only["families"][fam]["auc"]
        curves[name] = (badness, retake)
        results[name] = {"file": str(path), "reasons": list(reasons), "rule": rule.to_dict(),
                         "summary": summary(tables[name])}

    from diqa_edge.sdk import QualityScorer

    contract = QualityScorer(Path(args.model[0].rpartition("=")[2])).contract
    calib = parts["train"] + parts["val"]
    cache = cache_root() / "baseline" / f"{args.skin_set.name}.json"
    calib_m = baseline_measures(calib, contract, cache)
    gate = calibrate(calib_m, Views.of(calib).pristine, accept=0.95)
    test_m = baseline_measures(test, contract, cache)
    tables["baseline"] = acceptance_table(gate.retake(test_m), views, badness=gate.badness(test_m))
    curves["baseline"] = (gate.badness(test_m), gate.retake(test_m))
    results["baseline"] = {"thresholds": gate.to_dict(), "calibrated_on": f"{len(calib)} train + val views",
                           "summary": summary(tables["baseline"])}

    order = list(tables)
    report = {"test_photos": len({r.group for r in test}), "test_views": len(test), "models": results,
              "tables": tables, "markdown": markdown(tables, order)}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    roc_figure(curves, views, args.figure, f"Skin gate on {report['test_photos']} unseen photos "
                                           "(dots: each gate's own rule)")
    print(report["markdown"])
    for n, r in results.items():
        print(n, json.dumps(r["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
