"""The ablation runner on a tiny copy of a published layout: one row per variant, same splits, int8 figures."""

from __future__ import annotations

import csv
import dataclasses
import json
import warnings

from helpers import layouts
import numpy as np
import pytest
from diqa_edge.ablation.run import VARIANTS, run_ablation
from diqa_edge.training.experiments import ExperimentConfig
from diqa_edge.training.trainer import TrainConfig


def test_each_variant_is_a_row_on_the_same_held_out_images(tmp_path, monkeypatch):
    layouts.kadid(tmp_path / "kadid", refs=10)
    layouts.manifest(tmp_path / "derm", groups=10)
    base = ExperimentConfig(
        datasets=["kadid"], dataset_dirs={"kadid": str(tmp_path / "kadid"), "derm": str(tmp_path / "derm")},
        max_train_images=24,
        train=TrainConfig(backbone="efficientnet_lite0", input_size=32, pretrained=False, epochs=1,
                          batch_size=8, cache_dir=str(tmp_path / "cache"), progress=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = run_ablation(base, ["baseline", "rank-loss", "plus-derm", "plus-synth"], tmp_path / "abl",
                            eval_modes=["full-image", "five-crop"])
    names = [r["variant"] for r in rows]
    assert names == ["baseline", "baseline, test: full-image", "baseline, test: five-crop", "rank-loss",
                     "plus-derm", "plus-synth"]
    # every row is measured on the same held-out images of the first dataset
    assert len({r["held_out_n"] for r in rows}) == 1
    # each trained row is its run card's figures, not a number computed beside them
    for row, run in zip([rows[0]] + rows[3:], ["baseline/kadid", "rank-loss/kadid", "plus-derm/all",
                                                "plus-synth/kadid"]):
        card = json.loads((tmp_path / "abl" / run / "split0" / "card.json").read_text())
        assert row["held_out_srocc"] == card["test_metrics"]["kadid"]["srocc"], run
        assert row["held_out_n"] == card["test_metrics"]["kadid"]["n"] and row["train_s"] == card["train_seconds"]
        assert row["images_per_s"] == pytest.approx(np.mean([h["images_per_s"] for h in card["history"]]))
    assert rows[0]["mmacs"] > 0
    # every trained row carries its score's sensitivity to invisible noise, kept beside the run
    kept = json.loads((tmp_path / "abl" / "baseline" / "kadid" / "split0" / "noise_sensitivity.json").read_text())
    assert rows[0]["noise_delta_mean"] == kept["mean"] and kept["n"] == rows[0]["held_out_n"]
    assert 0 <= kept["mean"] <= kept["max"]
    card = json.loads((tmp_path / "abl" / "rank-loss" / "kadid" / "split0" / "card.json").read_text())
    assert card["train_config"]["rank_loss_weight"] == 1.0
    card = json.loads((tmp_path / "abl" / "plus-derm" / "all" / "split0" / "card.json").read_text())
    assert card["trained_on"] == ["kadid", "derm"]
    # plus-synth: the same one dataset, its training pool grown by synthetic views of its own training photos
    card = json.loads((tmp_path / "abl" / "plus-synth" / "kadid" / "split0" / "card.json").read_text())
    assert card["trained_on"] == ["kadid"] and card["synthetic_views"]["requested"] == 1600
    assert 0 < card["synthetic_views"]["in_training"] < card["n_train"]
    assert "synthetic distorted views" in (tmp_path / "abl" / "plus-synth" / "kadid" / "split0" / "card.md").read_text()
    md = (tmp_path / "abl" / "ablation.md").read_text()
    assert "| rank-loss |" in md and "held-out SROCC" in md
    assert len(list(csv.DictReader(open(tmp_path / "abl" / "ablation.csv")))) == 6
    # a re-run reuses finished variants (same figures, no training) and refuses a changed recipe
    again = run_ablation(base, ["rank-loss"], tmp_path / "abl")
    assert again[0]["held_out_srocc"] == rows[3]["held_out_srocc"]
    # test-time crop rules of unchanged baseline weights are kept, not scored again
    import diqa_edge.ablation.run as ablation

    monkeypatch.setattr(ablation, "eval_mode_scores", lambda *a, **k: pytest.fail("re-scored a kept eval mode"))
    again = run_ablation(base, ["baseline"], tmp_path / "abl", eval_modes=["five-crop"])
    assert again[1]["held_out_srocc"] == rows[2]["held_out_srocc"] and again[1]["held_out_n"] == rows[2]["held_out_n"]
    changed = dataclasses.replace(base, train=dataclasses.replace(base.train, max_lr=1e-3))
    with pytest.raises(ValueError, match="another configuration"):
        run_ablation(changed, ["rank-loss"], tmp_path / "abl")


def test_unknown_variant_is_an_error_naming_the_known_ones(tmp_path):
    base = ExperimentConfig(datasets=["kadid"], dataset_dirs={"kadid": str(tmp_path)})
    with pytest.raises(ValueError, match="res320"):
        run_ablation(base, ["res999"], tmp_path / "abl")
    assert "res384" in VARIANTS and "lite2" in VARIANTS


def test_int8_columns_export_score_and_agree_with_fp32(tmp_path):
    layouts.kadid(tmp_path / "kadid", refs=20)   # 2 validation groups: 12 calibration images
    base = ExperimentConfig(
        datasets=["kadid"], dataset_dirs={"kadid": str(tmp_path / "kadid")}, max_train_images=24,
        train=TrainConfig(backbone="efficientnet_lite0", input_size=64, pretrained=True, epochs=1,
                          batch_size=8, cache_dir=str(tmp_path / "cache"), progress=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = run_ablation(base, ["baseline"], tmp_path / "abl", int8=True, eval_modes=[], num_calibration=8)[0]
    figures_path = tmp_path / "abl" / "baseline" / "kadid" / "split0" / "int8.json"
    figures = json.loads(figures_path.read_text())
    int8_file = next((figures_path.parent / "export").glob("*_tflite_int8.tflite"))
    assert row["int8_size_mb"] == pytest.approx(int8_file.stat().st_size / 1e6, abs=0.01)
    assert row["int8_latency_ms"] == figures["int8_latency_ms"] > 0
    assert (row["int8_srocc"], row["fp32_tflite_srocc"]) == (figures["int8"]["srocc"], figures["fp32_tflite"]["srocc"])
    # int8 is compared with the fp32 file on the same held-out images: close, not identical (> 0 fails if
    # the file were not quantised). No bound on the rank agreement: it is not stable for this 1-epoch model
    # trained on 24 images at 64 px (a fresh clone measured SROCC 0.0 where earlier runs gave > 0.5); the
    # re-run below proves the figure from the files
    assert row["int8_vs_fp32_max_abs"] > 0
    # a row exported before the agreement figure existed gets it on a re-run, from its files, unchanged
    kept = figures.pop("int8_vs_fp32")
    figures_path.write_text(json.dumps(figures))
    again = run_ablation(base, ["baseline"], tmp_path / "abl", int8=True, eval_modes=[])[0]
    assert again["int8_vs_fp32_srocc"] == pytest.approx(kept["srocc"], abs=1e-9)
    assert json.loads(figures_path.read_text())["int8_vs_fp32"]["max_abs"] == pytest.approx(kept["max_abs"], abs=1e-6)
