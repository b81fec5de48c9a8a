"""The experiment runner's grid on tiny copies of two published layouts: tables, scatters, cards."""

from __future__ import annotations

import csv
import json
import warnings

from helpers import layouts
from diqa_edge.training.experiments import ExperimentConfig, run_experiment
from diqa_edge.training.trainer import TrainConfig


def test_grid_trains_each_set_alone_and_all_and_tests_on_every_test_set(tmp_path):
    layouts.kadid(tmp_path / "kadid", refs=10)
    layouts.manifest(tmp_path / "derm", groups=10)
    layouts.livec(tmp_path / "livec")
    config = ExperimentConfig(
        datasets=["kadid", "derm", "livec"],
        dataset_dirs={"kadid": str(tmp_path / "kadid"), "derm": str(tmp_path / "derm"),
                      "livec": str(tmp_path / "livec")},
        splits=[0, 1], grid=True, max_train_images=24,
        train=TrainConfig(backbone="efficientnet_lite0", input_size=32, pretrained=False, epochs=1,
                          batch_size=8, cache_dir=str(tmp_path / "cache"), progress=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_experiment(config, tmp_path / "exp")
    assert set(results) == {"kadid", "derm", "all"}          # each trainable set alone + all together
    for per_test in results.values():
        assert set(per_test) == {"kadid", "derm", "livec"}    # tested on every test set
        assert all(len(v) == 2 for v in per_test.values())    # both splits
    md = (tmp_path / "exp" / "results.md").read_text()
    assert "Table 3: PLCC" in md and "Table 4: SROCC" in md and "derm (pseudo-MOS)" in md and "±" in md
    rows = list(csv.DictReader(open(tmp_path / "exp" / "results.csv")))
    assert len(rows) == 2 * 3 * 3 and {r["labels"] for r in rows} == {"MOS", "pseudo-MOS"}
    assert (tmp_path / "exp" / "scatter" / "all__on__livec.png").exists()
    card = json.loads((tmp_path / "exp" / "all" / "split1" / "card.json").read_text())
    assert card["trained_on"] == ["kadid", "derm"] and card["split"]["index"] == 1
    assert set(card["test_metrics"]) == {"kadid", "derm", "livec"} and card["git_commit"]
    assert (tmp_path / "exp" / "all" / "split1" / "card.md").exists()
