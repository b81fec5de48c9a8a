"""A run card's retake rule: today's form (``rule`` + ``rule_evidence``) and a card written before it."""

from __future__ import annotations

import json

import pytest

from diqa_edge.errors import DiqaError
from diqa_edge.models.load import SHIPPED_RUN, card_rule, load_trained


def test_the_shipped_card_carries_the_rule_the_bundled_manifest_applies():
    from diqa_edge.sdk.manifest import read_sidecar
    from diqa_edge.models.load import SHIPPED_MODEL

    card = json.loads((SHIPPED_RUN / "card.json").read_text())
    rule, evidence = card_rule(card)
    assert "decision" not in card and rule == read_sidecar(SHIPPED_MODEL).rule
    assert evidence["kind"] == "score+reasons, greedy" and evidence["detail"]["table"]
    assert load_trained(SHIPPED_RUN).rule == rule


def test_an_older_card_with_a_decision_gives_the_same_rule():
    """Runs trained before the rule had its form (their cards under ~/.cache) still export the rule they chose."""
    card = json.loads((SHIPPED_RUN / "card.json").read_text())
    rule, evidence = card_rule(card)
    old = {k: v for k, v in card.items() if k not in ("rule", "rule_evidence")}
    old["decision"] = {"rule": rule.describe(), "threshold": rule.score_threshold,
                       "score_threshold": rule.score_threshold, **evidence,
                       "reason_thresholds": dict(rule.reason_thresholds),
                       "detail": {**rule.detail.to_dict(), **evidence["detail"]}}
    assert card_rule(old) == (rule, evidence)
    assert card_rule({"model": "a BIQ2021-only run"}) == (None, {})


def test_a_validation_cut_an_older_export_wrote_into_a_card_is_not_the_runs_rule():
    """Some older exports wrote the BIQ2021 validation cut into the run's card as its decision; taking it for
    the run's rule would skip --min-sensitivity and --mos-cutoff on the next export."""
    old = {"decision": {"threshold": 4.2, "mos_cutoff": 5.5, "min_sensitivity": 0.9, "rule": "retake below 4.20",
                        "table": []}}
    assert card_rule(old) == (None, {})


@pytest.mark.parametrize("card, words", [
    ({"rule": "x"}, "is not a retake rule of version 1"),
    ({"rule": {"version": 2, "score_threshold": 5.0}}, "is not a retake rule of version 1"),
    ({"rule": {"version": 1}}, "is damaged (KeyError"),
    ({"rule": {"version": 1, "score_threshold": "high"}}, "is damaged (ValueError"),
    ({"rule": {"version": 1, "score_threshold": 5.0, "reason_thresholds": {"dark": float("nan")}}}, "not a finite"),
    ({"rule": {"version": 1, "score_threshold": 5.0}, "rule_evidence": [1]}, "'rule_evidence' must be a JSON object"),
    ({"decision": {"chosen_on": "skin calibration views", "rule": "x"}}, "field 'decision' is damaged"),
])
def test_a_damaged_card_rule_is_one_error_naming_the_field(card, words):
    with pytest.raises(DiqaError) as info:
        card_rule(card, "card.json")
    assert words in str(info.value) and str(info.value).startswith("card.json")
