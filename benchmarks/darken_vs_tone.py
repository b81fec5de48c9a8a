"""Can simple pixel statistics tell KADID's darkening at level 4 from a darker skin tone (issue 18)?

The shipped gate sends back 0.67 of level-4 darkened skin photos while it must accept the darker-tone
views (CIE L* to the power 1.3 / 1.6). This asks whether what the backbone's statistics miss is in
the plain histogram: 21 global statistics of each view (grey percentiles 1-99, channel means and
standard deviations, saturation, the share of near-black and near-white pixels, mean gradient), a
logistic regression, out-of-fold over 5 folds grouped by source photo, on the 257 photos of the
KADID-labelled skin set (``diqa-edge make-skin-set``). Reported: AUC, and the share of the faulty
views sent back when 95 % of the views that must pass do pass.

It then asks how far apart the two views are at all: for each photo, the power ``g`` for which the
darker-tone construction (L* -> 100 (L*/100)^g, a* and b* kept) best matches the level-4 darkened
view's L* (mean absolute difference over the pixels), and how well mean lightness alone separates the
darkened views from the L*^1.6 tone views (the gate cannot know a photo's lightness before the fault).

    python benchmarks/darken_vs_tone.py --out benchmarks/results/darken_vs_tone.json   # ~3 min
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
STATS = ["grey p1", "p5", "p25", "p50", "p75", "p95", "p99", "mean R", "mean G", "mean B", "std R", "std G",
         "std B", "saturation mean", "saturation median", "share < 0.05", "share < 0.1", "share < 0.2",
         "share > 0.9", "share > 0.95", "mean |gradient|"]
QUESTIONS = {"darken_4 vs darker_tone_2": (["darken_4"], ["darker_tone_2"]),
             "darken_4 vs pristine + darker tones": (["darken_4"], ["pristine", "darker_tone_1", "darker_tone_2"]),
             "contrast_4 vs pristine + contrast_1": (["contrast_4"], ["pristine", "contrast_1"])}


def statistics(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    g = a @ np.array([0.299, 0.587, 0.114], np.float32)
    mx, mn = a.max(-1), a.min(-1)
    sat = (mx - mn) / (mx + 1e-3)
    return np.r_[np.percentile(g, [1, 5, 25, 50, 75, 95, 99]), a.reshape(-1, 3).mean(0), a.reshape(-1, 3).std(0),
                 sat.mean(), np.median(sat), [(g < t).mean() for t in (0.05, 0.1, 0.2)],
                 [(g > t).mean() for t in (0.9, 0.95)], np.abs(np.diff(g, axis=1)).mean()]


GAMMAS = np.round(np.arange(1.0, 2.6, 0.025), 3)


def lightness(path: Path, step: int = 4) -> np.ndarray:
    """CIE L* of every ``step``-th pixel: the darker-tone views are defined on L*, so they are compared there."""
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(Image.open(path).convert("RGB"))[::step, ::step])[..., 0].ravel()


def tone_power(skin_set: Path) -> dict:
    """Darken level 4 as a darker skin tone: the best-matching power per photo, what is left, and the
    best split of the darkened from the L*^1.6 views by mean lightness."""
    fits, means = [], []
    for pristine in sorted(skin_set.glob("*__pristine.png")):
        stem = pristine.name.split("__")[0]
        l0, l4, tone = (lightness(skin_set / f"{stem}__{v}.png") for v in ("pristine", "darken_4", "darker_tone_2"))
        err = [np.abs(100 * (l0 / 100) ** g - l4).mean() for g in GAMMAS]
        fits.append((GAMMAS[int(np.argmin(err))], min(err)))
        means.append((l0.mean(), l4.mean(), tone.mean()))
    fits, means = np.array(fits), np.array(means)
    cuts = np.linspace(20, 80, 1201)
    tone_pass = np.array([(means[:, 2] >= c).mean() for c in cuts])
    dark_back = np.array([(means[:, 1] < c).mean() for c in cuts])
    at90 = int(np.nonzero(tone_pass >= 0.90)[0].max())

    def spread(v):
        return [round(float(x), 3) for x in np.percentile(v, [10, 50, 90])]

    return {"photos": len(fits), "best_power_p10_p50_p90": spread(fits[:, 0]),
            "residual_mean_abs_L_p10_p50_p90": spread(fits[:, 1]), "residual_mean_abs_L_max": round(float(fits[:, 1].max()), 3),
            "mean_L_pristine_p10_p50_p90": spread(means[:, 0]), "mean_L_darken_4_p10_p50_p90": spread(means[:, 1]),
            "mean_L_darker_tone_2_p10_p50_p90": spread(means[:, 2]),
            "by_mean_lightness_sent_back_at_90_tone_pass": round(float(dark_back[at90]), 3),
            "by_mean_lightness_equal_error": round(float(np.max(np.minimum(tone_pass, dark_back))), 3)}


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from diqa_edge.cachedir import skin_set_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skin-set", type=Path, default=skin_set_dir() / "images")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "darken_vs_tone.json")
    args = parser.parse_args(argv)
    families = sorted({f for pos, neg in QUESTIONS.values() for f in pos + neg})
    rows = [(fam, p.name.split("__")[0], statistics(p)) for fam in families
            for p in sorted(args.skin_set.glob(f"*__{fam}.png"))]
    if not rows:
        print(f"{args.skin_set}: no skin views (diqa-edge make-skin-set first)", file=sys.stderr)
        return 1
    fam = np.array([r[0] for r in rows])
    photo = np.array([r[1] for r in rows])
    X = np.stack([r[2] for r in rows])
    result = {"photos": len(set(photo)), "statistics": STATS, "questions": {}}
    for name, (pos, neg) in QUESTIONS.items():
        m = np.isin(fam, pos + neg)
        y = np.isin(fam[m], pos).astype(int)
        single = {s: round(max(a, 1 - a), 3) for s, a in
                  ((s, roc_auc_score(y, X[m, i])) for i, s in enumerate(STATS))}
        p = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), X[m], y,
                              groups=photo[m], cv=GroupKFold(5), method="predict_proba")[:, 1]
        cut = np.quantile(p[y == 0], 0.95)
        result["questions"][name] = {"auc_all_statistics": round(float(roc_auc_score(y, p)), 3),
                                     "sent_back_at_95_pass": round(float((p[y == 1] > cut).mean()), 3),
                                     "best_single": max(single.items(), key=lambda kv: kv[1]),
                                     "auc_each": single}
        print(f"{name}: AUC {result['questions'][name]['auc_all_statistics']}, sent back at 95 % pass "
              f"{result['questions'][name]['sent_back_at_95_pass']}, best single "
              f"{result['questions'][name]['best_single']}")
    result["darken_4_as_a_tone_power"] = tone_power(args.skin_set)
    print("darken_4 as a tone power:", json.dumps(result["darken_4_as_a_tone_power"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
