"""The contract survives JSON unchanged and refuses what it cannot honour."""

import json

import pytest

from diqa_edge.contract import DEFAULT_CONTRACT, IMAGENET_MEAN, Contract, ContractError


def test_json_round_trip_is_identity_and_stable():
    c = Contract(input_size=320, layout="NHWC", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), decode="jpeg_draft")
    text = c.to_json()
    back = Contract.from_json(text)
    assert back == c
    assert back.to_json() == text
    assert json.loads(text)["mean"] == [0.5, 0.5, 0.5]
    assert DEFAULT_CONTRACT.mean == IMAGENET_MEAN


def test_fingerprint_ignores_layout_but_not_pixels():
    base = DEFAULT_CONTRACT
    assert base.fingerprint() == base.with_layout("NHWC").fingerprint()
    assert base.fingerprint() != base.replace(input_size=320).fingerprint()
    assert base.fingerprint() != base.replace(mean=(0.5, 0.5, 0.5)).fingerprint()


@pytest.mark.parametrize("changes, words", [
    ({"input_size": 4}, "input_size"),
    ({"layout": "CHWN"}, "layout"),
    ({"interpolation": "nearest"}, "interpolation"),
    ({"std": (0.2, 0.0, 0.2)}, "std"),
    ({"score_min": 10.0, "score_max": 1.0}, "score_min"),
    ({"version": 99}, "version"),
])
def test_invalid_values_are_refused_with_the_field_named(changes, words):
    with pytest.raises(ContractError, match=words):
        DEFAULT_CONTRACT.replace(**changes)


def test_unknown_fields_and_bad_json_are_refused():
    data = DEFAULT_CONTRACT.to_dict() | {"gamma": 2.2}
    with pytest.raises(ContractError, match="gamma"):
        Contract.from_dict(data)
    with pytest.raises(ContractError, match="not valid JSON"):
        Contract.from_json("{nope")
    with pytest.raises(ContractError, match="integer"):
        Contract.from_dict(DEFAULT_CONTRACT.to_dict() | {"input_size": 224.5})


def test_clamp_rule():
    c = DEFAULT_CONTRACT
    assert c.clamp_score(-3.0) == c.score_min
    assert c.clamp_score(12.5) == c.score_max
    assert c.clamp_score(4.25) == 4.25
    assert c.replace(clamp=False).clamp_score(12.5) == 12.5
