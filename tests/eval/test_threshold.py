"""The accept / retake decision: chosen for a stated sensitivity, with its ROC, AUC and operating table."""

from __future__ import annotations

import numpy as np

from diqa_edge.contract import Contract
from diqa_edge.sdk.decision import RetakeRule
from diqa_edge.sdk.manifest import ModelManifest
from diqa_edge.eval.threshold import choose_threshold, roc_auc, roc_plot, roc_points, sens_spec


def _scores(n=400, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    mos = rng.uniform(1, 10, n)
    return mos + rng.normal(0, noise, n), mos


def test_threshold_meets_the_sensitivity_target_with_the_best_specificity():
    pred, mos = _scores()
    d = choose_threshold(pred, mos, min_sensitivity=0.9)
    assert d.sensitivity >= 0.9 and d.min_sensitivity == 0.9
    # brute force over every candidate threshold: none with sensitivity >= 0.9 has higher specificity
    best = max(sens_spec(pred, mos, t, 5.5)[1] for t in np.unique(pred) + 1e-6
               if sens_spec(pred, mos, t, 5.5)[0] >= 0.9)
    assert abs(d.specificity - best) < 1e-12
    print(f"threshold {d.threshold:.3f}: sensitivity {d.sensitivity:.3f}, specificity {d.specificity:.3f}, "
          f"AUC {d.auc:.4f}")


def test_auc_is_the_pairwise_ranking_probability_and_the_table_is_monotone():
    pred, mos = _scores(n=300, noise=2.0, seed=1)
    bad, good = pred[mos < 5.5], pred[mos >= 5.5]
    pairwise = np.mean([(g > b) + 0.5 * (g == b) for g in good for b in bad])
    assert abs(roc_auc(pred, mos) - pairwise) < 1e-12
    assert 0.8 < pairwise < 0.95   # noise 2 on a 1-10 scale: informative, far from perfect
    table = choose_threshold(pred, mos, min_sensitivity=0.9).table
    assert [r["target_sensitivity"] for r in table] == [0.8, 0.85, 0.9, 0.95]
    assert all(r["sensitivity"] >= r["target_sensitivity"] for r in table)
    assert all(a["threshold"] <= b["threshold"] and a["specificity"] >= b["specificity"]
               for a, b in zip(table, table[1:]))
    fpr, tpr = roc_points(pred, mos)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert abs(np.trapz(tpr, fpr) - pairwise) < 0.01


def test_roc_plot_and_the_decision_travel_in_the_manifest(tmp_path):
    pred, mos = _scores()
    d = choose_threshold(pred, mos, min_sensitivity=0.9)
    png = roc_plot(pred, mos, d, tmp_path / "roc.png")
    assert png.stat().st_size > 5000
    m = ModelManifest(Contract(), d.retake_rule(), rule_evidence=d.evidence())
    back = ModelManifest.from_json(m.to_json())
    assert back.rule == RetakeRule(d.threshold) and back.threshold == d.threshold
    assert back.rule_evidence["min_sensitivity"] == 0.9 and len(back.rule_evidence["table"]) == 4
    assert back.rule_evidence["table"][2]["threshold"] == d.threshold   # the 0.9 row is the chosen threshold
    assert "threshold" not in back.rule_evidence and "rule" not in back.rule_evidence   # the cut lives in the rule only


def test_caught_alone_is_the_share_of_a_fault_above_the_threshold_that_passes_the_good_views():
    from diqa_edge.eval.gate import caught_alone

    values = np.r_[np.arange(100.0), np.arange(95.0, 105.0)]       # 100 good views, then 10 faulty ones
    faulty = np.r_[np.zeros(100, bool), np.ones(10, bool)]
    caught = caught_alone(values, faulty, ~faulty, accept=(0.97, 0.95, 1.0))
    # thresholds 96.03, 94.05 and 99: the faulty views above them are 97..104, 95..104 and 100..104
    assert caught == {"0.97": 0.8, "0.95": 1.0, "1.0": 0.5}
