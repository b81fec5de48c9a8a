"""Class weights by hand, metrics against scipy, the rank term's direction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from diqa_edge.training.losses import class_weights, pairwise_rank_loss, sample_weights, weighted_mse
from diqa_edge.eval.metrics import all_metrics, fit_logistic, krocc, plcc, plcc_logistic, rmse, srocc


def test_class_weights_by_hand():
    # 8 training MOS -> levels 2, 2, 2, 2, 5, 5, 9, 10 (rounded, clipped to 1..10)
    mos = [1.6, 2.2, 2.4, 1.9, 5.0, 4.6, 9.4, 10.3]
    w = class_weights(mos)
    # w_l = |D| / (10 * count_l): 8 / (10 * 4) = 0.2, 8 / 20 = 0.4, 8 / 10 = 0.8
    assert w == pytest.approx({2: 0.2, 5: 0.4, 9: 0.8, 10: 0.8})
    per_sample = sample_weights([2.0, 5.4, 9.0, 7.0], w)
    assert per_sample.tolist() == pytest.approx([0.2, 0.4, 0.8, 0.8])  # level 7 unseen: largest weight


def test_weighted_mse_by_hand():
    pred = torch.tensor([2.0, 4.0, 9.0])
    target = torch.tensor([3.0, 4.0, 7.0])
    weight = torch.tensor([0.5, 1.0, 2.0])
    # (0.5 * 1 + 1 * 0 + 2 * 4) / 3
    assert float(weighted_mse(pred, target, weight)) == pytest.approx(8.5 / 3)


def test_rank_loss_prefers_the_right_order():
    target = torch.tensor([1.0, 5.0, 9.0])
    right = pairwise_rank_loss(torch.tensor([1.0, 5.0, 9.0]), target)
    wrong = pairwise_rank_loss(torch.tensor([9.0, 5.0, 1.0]), target)
    assert float(right) < float(wrong)


def test_metrics_match_scipy_on_known_data():
    rng = np.random.default_rng(0)
    mos = rng.uniform(1, 10, 200)
    pred = mos + rng.normal(0, 1.5, 200)
    assert plcc(pred, mos) == pytest.approx(stats.pearsonr(pred, mos)[0], abs=1e-12)
    assert srocc(pred, mos) == pytest.approx(stats.spearmanr(pred, mos)[0], abs=1e-12)
    assert krocc(pred, mos) == pytest.approx(stats.kendalltau(pred, mos)[0], abs=1e-12)
    assert rmse(pred, mos) == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)))
    assert plcc([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert srocc([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)


def test_logistic_fit_linearises_a_monotonic_curve():
    x = np.linspace(-3, 3, 100)
    mos = 1 + 9 / (1 + np.exp(-2 * x))          # a sigmoid of the prediction
    assert plcc(x, mos) < 0.97
    assert plcc_logistic(x, mos) > 0.999
    assert np.abs(fit_logistic(x, mos, 4) - mos).max() < 0.05
    m = all_metrics(x, mos)
    assert set(m) == {"plcc", "srocc", "krocc", "rmse", "plcc_logistic", "n"} and m["n"] == 100
