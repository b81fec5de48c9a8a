"""A run card's retake rule: today's form (``rule`` + ``rule_evidence``) and a card written before it."""

from __future__ import annotations

import json

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
