"""How the 1:1 thresholds are chosen: KADID's faults at 1:1 on a photo's centre tile, their labels, and the cut."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES
from diqa_edge.sdk.detail import DetailRule, DetailStats
from diqa_edge.training.detail_gate import (MAX_PRISTINE_RETAKE, TileView, _threshold, choose_detail_rule,
                                            tile_views)


def test_faults_at_1_to_1_move_the_measures_by_level_and_carry_kadids_labels():
    views = tile_views(SAMPLES / "skin_ISIC_0000051.jpg", 256)
    by = {(v.family, v.level): v for v in views}
    assert len(views) == 1 + 4 * 5 and by[(None, None)].label == 10.0
    noise = [by[("noise", lv)].stats.noise for lv in range(1, 6)]
    assert noise == sorted(noise) and noise[0] > 2 * by[(None, None)].stats.noise
    blur = [by[("gaussian_blur", lv)].stats.sharpness for lv in range(1, 5)]
    assert blur == sorted(blur, reverse=True)
    assert by[("gaussian_blur", 4)].label == pytest.approx(2.96, abs=0.01)     # KADID's DMOS, on 1-10
    assert tile_views(SAMPLES / "skin_ISIC_0000051.jpg", 2048) == []          # smaller than the tile


def test_the_cut_is_midway_and_spends_at_most_the_pristine_budget():
    values = np.array([1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    want = np.array([False, False, False, True, True, True])
    pristine = ~want
    assert _threshold(values, want, pristine, above=True) == pytest.approx(6.5)
    # overlapping: the cut that would send back a third of the pristine tiles is not allowed
    values = np.array([1.0, 2.0, 9.0, 8.0, 11.0, 12.0])
    cut = _threshold(values, want, pristine, above=True)
    assert (values[pristine] > cut).mean() <= MAX_PRISTINE_RETAKE and cut == pytest.approx(10.0)


def test_the_rule_sends_back_what_kadid_labels_below_the_threshold():
    rng = np.random.default_rng(0)
    views = []
    for i in range(200):
        views.append(TileView(f"p{i}", None, None, 10.0, DetailStats(rng.uniform(0.5, 4), rng.uniform(0.55, 1.2))))
        views.append(TileView(f"p{i}", "noise", 4, 4.85, DetailStats(rng.uniform(10, 13), 1.5)))
        views.append(TileView(f"p{i}", "noise", 5, 3.93, DetailStats(rng.uniform(15, 18), 1.7)))
        views.append(TileView(f"p{i}", "gaussian_blur", 3, 5.30, DetailStats(0.3, rng.uniform(0.48, 0.6))))
        views.append(TileView(f"p{i}", "gaussian_blur", 4, 2.96, DetailStats(0.2, rng.uniform(0.33, 0.44))))
    d, evidence = choose_detail_rule(views, 4.69)
    assert 13 < d.noise_max < 15 and 0.44 < d.sharpness_min < 0.48 and d.tile == 256
    rows = {(r["family"], r["level"]): r["retake"] for r in evidence["table"]}
    assert rows[("as taken", None)] == 0 and rows[("noise", 5)] == 1 and rows[("gaussian_blur", 4)] == 1
    assert rows[("noise", 4)] == 0 and rows[("gaussian_blur", 3)] == 0


def test_the_command_writes_the_rule_into_the_card_and_the_card_a_reader_opens(tmp_path, monkeypatch):
    """``diqa-edge detail-rule`` rewrote card.json and left card.md saying the old thresholds."""
    import argparse
    import shutil

    from diqa_edge.training import detail_gate

    run = Path(__file__).resolve().parents[2] / "diqa_edge" / "models" / "run"
    for name in ("card.json", "card.md"):
        shutil.copy(run / name, tmp_path / name)
    chosen = DetailRule(noise_max=12.5, sharpness_min=0.41, tile=256)
    monkeypatch.setattr(detail_gate, "detail_rule", lambda card, threshold, workers: (
        chosen, {"chosen_on": "a test's tiles", "table": [{"family": "as taken", "level": None, "n": 3, "retake": 0.0}]}))
    assert detail_gate.run(argparse.Namespace(card=tmp_path / "card.json", workers=1)) == 0
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["rule"]["detail"] == chosen.to_dict() and card["rule"]["detail"]["sharpness_measure"] == "net-of-noise"
    text = (tmp_path / "card.md").read_text()
    assert "noise above 12.50 grey levels or sharpness below 0.410; chosen on a test's tiles" in text
    assert "sharpness below 0.463" not in text
