"""The human-readable card of a feature-model run (``card.md`` beside ``card.json``).

Its own module so that whatever rewrites a run's rule (training, ``diqa-edge detail-rule``) can write the
card a reader opens without importing the training code that calls it.
"""

from __future__ import annotations

from ..eval.report import cell, markdown_table
from ..models.load import card_rule

SKIN_LABELS = {
    "derm": "KADID-10k human DMOS per (type, level) (see data/kadid.py), not ratings of these photos; the camera's "
            "own faults by their family's rule (data/camera.py)",
    "phone": "real phone photos (PAD-UFES-20, 300 px) as taken: 10, except those a reviewer judged not acceptable "
             "(data/reviewed/pad_ufes_phone.csv, a label written by a person, labelled 2.96 with their reason); "
             "their faults labelled as in derm; grouped by patient",
}


def _ci(m: dict, name: str) -> str:
    lo, hi = m[f"{name}_ci"]
    return f"{m[name]:.3f} [{lo:.3f}, {hi:.3f}]"


def gate_markdown(table: dict) -> list[str]:
    rows = [[fam] + [f"{row[str(lv)]['retake']:.2f}" if str(lv) in row else "–" for lv in range(1, 6)]
            + [f"{row.get('auc', float('nan')):.3f}"] for fam, row in table["families"].items()]
    p = table["pristine"]
    rows.append(["pristine accepted", f"{p['accept']:.3f} [{p['accept_ci'][0]:.3f}, {p['accept_ci'][1]:.3f}] "
                 f"(n = {p['n']})"] + [""] * 5)
    if "natural" in table:
        rows.append([f"{table['natural']['what']}: accepted",
                     f"{table['natural']['accept']:.3f} (n = {table['natural']['n']})"] + [""] * 5)
    return markdown_table(["family", "retake at level 1", "2", "3", "4", "5", "AUC of the score"], rows)


def _score_head_text(card: dict) -> str:
    head = card.get("score_head") or {"kind": "ridge", "alpha": card["ridge_alpha"]}
    if head["kind"] == "svr-rbf":
        return (f"score: an RBF support-vector regression (C {head['C']:g}, gamma {head['gamma']:g}, epsilon "
                f"{head['epsilon']:g}; {head['support_vectors']:,} support vectors, in the model "
                f"{'as one matrix' if not head.get('rank') else 'in their ' + str(head['rank']) + ' leading singular directions'}) on "
                "the BIQ2021 training photos' human MOS and a seeded sample of skin views (KADID labels, weight "
                f"{card['config']['svr_skin_weight']:g}; {head.get('rows', 0):,} rows in all); reasons: one linear layer "
                "of logistic heads on the skin views")
    return (f"one linear layer (ridge score, alpha {head['alpha']:.3g}, chosen by leave-one-out CV on the training "
            "rows; logistic reasons heads)")


def card_markdown(card: dict) -> str:
    """The human-readable card of a feature-model run (the bundle appends the shipped file's figures)."""
    c = card["contract"]
    lines = [f"# Model card: {card['model']}", "",
             f"- Backbone: {card['backbone_start']}, frozen; statistics (mean, std) of stages "
             f"{', '.join(card['stages'])}; " + _score_head_text(card),
             f"- Input: {c['input_size']} px, resize shorter side + center crop, mean {c['mean']}, std {c['std']}",
             "- Trained on: " + "; ".join(f"{n} ({card['labels'][n]}): {card['n_train'][n]} training views"
                                          for n in card["trained_on"]),
             f"- Split {card['split']['index']} (seed {card['split']['seed']}); BIQ2021 rows appended after the "
             "first 4,000 are split on their own, so the earlier model's 800 held-out photos stay held out",
             f"- Git commit: {card['git_commit']}", ""]
    lines += markdown_table(("test set", "n", "SROCC [95 % CI]", "PLCC [95 % CI]", "RMSE"),
                            ((name, m["n"], _ci(m, "srocc"), _ci(m, "plcc"), cell(m["rmse"]))
                             for name, m in card["test_metrics"].items()))
    rule, evidence = card_rule(card)
    if rule is not None:
        lines += ["", "## Accept / retake rule (skin)", "",
                  f"{rule.describe()} (kind {evidence['kind']}: "
                  + ("each threshold moved in turn where it sends back the most level-4-5 views per good view"
                     if evidence["quantile"] is None or evidence["quantile"] != evidence["quantile"] else
                     f"each threshold at the {evidence['quantile']:.2%} tail of the views that must pass")
                  + f"; chosen on {evidence['chosen_on']}: out-of-fold outputs of the skin training views, the "
                  "validation views and good BIQ2021 validation photos). Reason thresholds: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in rule.reason_thresholds.items()), "",
                  f"On the calibration views: pristine accepted {evidence['calibration']['pristine_accept']:.3f}, "
                  f"levels 4-5 sent back {evidence['calibration']['severe_retake']:.3f} (worst family "
                  f"{evidence['calibration']['severe_retake_worst_family']:.3f}), mild level-1 views accepted "
                  f"{evidence['calibration']['mild_accept']:.3f}.", "",
                  "On the skin test part (photos never seen; PyTorch fp32 outputs; AUC: the score alone, "
                  "every level against pristine). The exported files, the previous model and the classical "
                  "baseline on the same photos, with intervals: `benchmarks/RESULTS.md`.", ""]
        if rule.detail is not None:
            dd, de = rule.detail, evidence.get("detail", {})
            lines += [f"At 1:1 (the photo's own pixels, centre {dd.tile} px; `diqa_edge.sdk.detail`): a photo the "
                      f"rule accepts is sent back for noise above {dd.noise_max:.2f} grey levels or sharpness "
                      f"below {dd.sharpness_min:.3f}; chosen on {de.get('chosen_on', 'not recorded')}. Sent back there:", ""]
            lines += markdown_table(("view at 1:1", "level", "n", "sent back"),
                                    ((r["family"], r["level"] or "", r["n"], f"{r['retake']:.3f}")
                                     for r in de.get("table", [])))
            lines += [""]
        lines += ["Dermoscopy photos (never seen):", ""] + gate_markdown(card["skin_gate"])
        if card.get("phone_gate"):
            lines += ["", "Phone photos of patients never seen (PAD-UFES-20, 300 px; 'as_taken_blur': photos a "
                      "reviewer judged not acceptable as taken):", ""] + gate_markdown(card["phone_gate"])
        lines += ["", "Labels of the skin views: " + "; ".join(f"{n}: {card['labels'][n]}" for n in card["labels"]
                                                         if n in SKIN_LABELS)
                  + ". The reviewed list of phone photos is a label: one person's judgement of each photo at 2x. "
                  "Most photos are of light skin (Fitzpatrick I-III): behaviour on darker skin is measured only "
                  "with the darker-tone views."]
    return "\n".join(lines) + "\n"
