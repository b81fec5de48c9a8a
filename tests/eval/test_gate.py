"""The rule search: what each way of valuing severe views buys, and the pristine margin held per domain."""

import numpy as np
import pytest

from diqa_edge.eval.gate import PRISTINE_MARGIN, SEARCHES, Views, choose_rule, greedy_rule, rates

REASONS = ("big", "small")


def _calibration():
    """200 pristine and 200 mild views; a plentiful family (400 views) and a rare one (40), each half cheap
    (its reason above every good view but one) and half dear (a step that sends back 4 more pristine views).
    The pristine margin (0.97 of 200: 6 views) pays for both cheap steps and one dear step, not two."""
    n = 200
    pristine_big, pristine_small = np.zeros(n), np.zeros(n)
    pristine_big[0], pristine_big[1:5] = 0.95, 0.7
    pristine_small[5], pristine_small[6:10] = 0.95, 0.7
    big = np.r_[np.full(370, 0.99), np.full(30, 0.8)]
    small = np.r_[np.full(20, 0.99), np.full(20, 0.8)]
    outputs = np.c_[np.full(2 * n + 440, 8.0),
                    np.r_[pristine_big, np.zeros(n), big, np.zeros(40)],
                    np.r_[pristine_small, np.zeros(n), np.zeros(400), small]]
    families = np.array(["none"] * n + ["mildfam"] * n + ["big"] * 400 + ["small"] * 40)
    levels = np.array([0] * n + [1] * n + [5] * 440)
    return outputs, Views(families, levels), families == "mildfam"


def test_each_search_spends_the_last_good_views_where_it_values_most():
    """Counting views, the plentiful family's dear step (30 views for 4) wins and the rare family stays at
    half; valuing each family alike, or only up to the target, the rare family's (20 of 40) wins."""
    outputs, views, mild = _calibration()
    caught = {}
    for search in SEARCHES:
        retake = greedy_rule(outputs, views, REASONS, mild, search=search).retake_mask(outputs, REASONS)
        caught[search] = {f: float(retake[views.families == f].mean()) for f in ("big", "small")}
        assert 1 - retake[views.pristine].mean() >= PRISTINE_MARGIN
    assert caught["views"] == {"big": 1.0, "small": 0.5}
    assert caught["cells"] == {"big": 0.925, "small": 1.0}
    assert caught["coverage"] == {"big": 0.925, "small": 1.0}


def test_pristine_margin_holds_in_each_domain():
    """A rule that sends back 10 % of one domain's pristine views is refused even when the other domain's
    many pristine views keep the pooled rate above the margin."""
    rng = np.random.default_rng(1)
    n_a, n_b, n_bad = 900, 100, 200
    # domain b's pristine views look faulty to reason "big" 10 % of the time
    big = np.r_[rng.uniform(0, 0.5, n_a), np.r_[rng.uniform(0.8, 1.0, 10), rng.uniform(0, 0.5, n_b - 10)],
                rng.uniform(0.8, 1.0, n_bad)]
    outputs = np.c_[np.full(len(big), 8.0), big, np.zeros(len(big))]
    families = np.array(["none"] * (n_a + n_b) + ["big"] * n_bad)
    levels = np.array([0] * (n_a + n_b) + [5] * n_bad)
    domains = np.array(["a"] * n_a + ["b"] * n_b + ["a"] * n_bad)
    mild = np.zeros(len(big), bool)
    pooled = choose_rule(outputs, Views(families, levels), REASONS, mild)
    per_domain = choose_rule(outputs, Views(families, levels, domains), REASONS, mild)
    pooled_rates = rates(pooled.rule.retake_mask(outputs, REASONS), Views(families, levels, domains), mild)
    per_rates = rates(per_domain.rule.retake_mask(outputs, REASONS), Views(families, levels, domains), mild)
    assert pooled_rates["pristine_accept"] >= PRISTINE_MARGIN
    assert pooled_rates["pristine_accept_b"] < PRISTINE_MARGIN        # the pooled margin let domain b pay
    assert per_rates["pristine_accept_b"] >= PRISTINE_MARGIN
    assert per_rates["pristine_accept_a"] >= PRISTINE_MARGIN


def test_unknown_search_is_refused():
    outputs, views, mild = _calibration()
    with pytest.raises(ValueError, match="unknown rule search"):
        choose_rule(outputs, views, REASONS, mild, search="best")


def test_one_domain_named_is_the_pooled_rule():
    """Domains only matter when there are several: the shipped rule (chosen without domains) is what a
    search with every view in one domain chooses, so naming domains changes nothing by itself."""
    outputs, views, mild = _calibration()
    pooled = choose_rule(outputs, views, REASONS, mild)
    named = choose_rule(outputs, Views(views.families, views.levels, np.full(len(outputs), "derm")), REASONS, mild)
    assert named.rule == pooled.rule
