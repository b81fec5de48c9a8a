"""``diqa-edge train --model pooled-stats`` end to end on a tiny BIQ2021 layout and a tiny skin set: the run
folder loads for export, computes what the fit predicted, carries a skin retake rule, and a second run reads
every feature from the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES
from diqa_edge.data.splits import run_split_part

torch = pytest.importorskip("torch", reason="full install only")

SIZE = 64


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from diqa_edge.data.skinviews import make_phone_set, make_skin_set

    root = tmp_path_factory.mktemp("feature_model")
    photos = sorted(SAMPLES.glob("*.jpg"))
    rng = np.random.default_rng(0)
    biq = root / "biq2021"
    (biq / "Images").mkdir(parents=True)
    rows = []
    for i in range(40):   # BIQ2021's published layout: names, MOS on 0-1, trailing empty columns
        src = Image.open(photos[i % len(photos)]).convert("RGB").resize((96, 80))
        arr = np.clip(np.asarray(src, np.int16) + rng.integers(-30, 31, (80, 96, 3)) * (i % 3), 0, 255)
        name = f"ss01 ({i}).jpg"
        Image.fromarray(arr.astype(np.uint8)).save(biq / "Images" / name, quality=90)
        rows.append(f"{name},{rng.uniform(0.05, 0.95):.4f},,\n")
    (biq / "Train (Images and MOS).csv").write_text("Image Name,MOS,,\n" + "".join(rows))
    pristine = root / "pristine"
    pristine.mkdir()
    sharp_skin = [p for p in photos if p.stem.startswith("skin_") and p.stem.count("_") == 2]   # not *_blurred
    for p in sharp_skin[:7]:
        Image.open(p).convert("RGB").resize((120, 90)).save(pristine / p.name, quality=95)
    make_skin_set(pristine, root / "skin", short_side=SIZE, workers=1, progress=False)
    # a phone set: the skin samples as phone photos of eight patients, one reviewed "not acceptable as taken"
    phone = root / "phone"
    (phone / "images").mkdir(parents=True)
    listed = []
    for i, p in enumerate(sharp_skin[:10]):
        Image.open(p).convert("RGB").resize((72, 72)).save(phone / "images" / f"p{i}.jpg", quality=92)
        listed.append(f"p{i}.jpg,PAT_{i}\n")
    (phone / "manifest.csv").write_text("image,patient\n" + "".join(listed))
    make_phone_set(phone, root / "phone-set", workers=1, views_per_photo=4, reviewed={"p3.jpg": "blur"},
                   progress=False)
    return {"biq2021": str(biq), "derm": str(root / "skin"), "phone": str(root / "phone-set")}


def test_pooled_stats_run_loads_for_export_and_reuses_its_features(data, tmp_path, monkeypatch):
    from diqa_edge.export.parity import ParityImages, torch_outputs
    from diqa_edge.models.load import load_trained
    from diqa_edge.training.feature_model import FeatureModelConfig, train_feature_model

    monkeypatch.setenv("DIQA_EDGE_CACHE", str(tmp_path / "cache"))
    config = FeatureModelConfig(dataset_dirs=data, input_size=SIZE, cv_folds=2)
    card = train_feature_model(config, tmp_path / "run", progress=False)
    n_images = sum(card["n_train"].values()) + sum(card["n_val"].values())
    assert card["features_computed_this_run"] > n_images           # train, val and test parts all extracted
    assert card["outputs"] == ["score", "blur", "dark", "bright", "contrast", "noise", "jpeg", "colour", "glare",
                               "obstruction"]
    assert card["trained_on"] == ["biq2021", "derm", "phone"] and card["phone_gate"]["pristine"]["n"] >= 1
    phone_test = {r.group for r in run_split_part(card, "test") if r.dataset == "phone"}
    phone_train = {r.group for r in run_split_part(card, "train") if r.dataset == "phone"}
    assert phone_test and not phone_test & phone_train                # grouped by patient
    assert card["rule_evidence"]["chosen_on"].startswith("skin") and card["rule"]["reason_thresholds"]
    assert "decision" not in card and card["rule"]["version"] == 1
    assert set(card["skin_gate"]["families"]) >= {"gaussian_blur", "darken", "darker_tone"}
    assert (tmp_path / "run" / "card.md").read_text().startswith("# Model card")

    trained = load_trained(tmp_path / "run")
    skin_test = json.loads((tmp_path / "run" / "card.json").read_text())["test_metrics"]["derm"]
    assert skin_test["n"] == len([r for r in run_split_part(trained.card, "test") if r.dataset == "derm"])
    images = ParityImages.from_records(run_split_part(trained.card, "test"), limit=10)
    out = torch_outputs(trained.model, images, trained.contract)
    assert out.shape == (len(images.paths), 10) and ((out[:, 1:] >= 0) & (out[:, 1:] <= 1)).all()

    # the bundled model's head was made this way (`diqa-edge train --from-run RUN --score-rank N`): it named a
    # predict function the 2026-12-05 fold had removed, so it failed on every run with skin test views
    from diqa_edge.training.feature_model import reduce_score_head

    reduced = reduce_score_head(tmp_path / "run", tmp_path / "reduced", rank=4, progress=False)
    assert reduced["rule"] == card["rule"] and reduced["rule_evidence"] == card["rule_evidence"]
    assert reduced["score_head"]["rank"] == 4 and reduced["config"]["score_rank"] == 4
    assert reduced["skin_gate"]["pristine"]["n"] == card["skin_gate"]["pristine"]["n"]
    assert load_trained(tmp_path / "reduced").rule == trained.rule

    again = train_feature_model(config, tmp_path / "run2", progress=False)
    assert again["features_computed_this_run"] == 0                # counted: every feature read from the cache
    assert again["test_metrics"]["biq2021"]["srocc"] == pytest.approx(card["test_metrics"]["biq2021"]["srocc"])


def test_a_run_tuned_past_the_frozen_trunk_stores_and_loads_its_tuned_stage(data, tmp_path, monkeypatch):
    from diqa_edge.export.parity import ParityImages, torch_outputs
    from diqa_edge.models.load import load_trained
    from diqa_edge.models.pooled_stats import build_pooled_stats
    from diqa_edge.training.feature_model import FeatureModelConfig, train_feature_model

    monkeypatch.setenv("DIQA_EDGE_CACHE", str(tmp_path / "cache"))
    config = FeatureModelConfig(dataset_dirs=data, input_size=SIZE, cv_folds=2, tune="block5", tune_epochs=2,
                                tune_lr=1e-3)
    card = train_feature_model(config, tmp_path / "run", progress=False)
    assert card["tuning"]["tuned_modules"] == ["blocks.6"] and [h["epoch"] for h in card["tuning"]["history"]] == [0, 1, 2]
    assert card["tuning"]["images"] == 2 * card["n_train"]["biq2021"]    # tuned on the BIQ2021 photos only

    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / "head.safetensors"))
    assert {k.split(".")[2] for k in saved if k.startswith("trunk.")} == {"6"}   # the tuned stage only
    trained = load_trained(tmp_path / "run")
    loaded = trained.model.trunk.state_dict()
    assert all(torch.equal(loaded[k.removeprefix("trunk.")], v) for k, v in saved.items() if k.startswith("trunk."))
    imagenet = build_pooled_stats("efficientnet_lite0", card["stages"], input_size=SIZE).model.trunk.state_dict()
    assert torch.equal(loaded["blocks.5.0.conv_pw.weight"], imagenet["blocks.5.0.conv_pw.weight"])   # frozen
    last_epoch = torch.load(tmp_path / "run" / "tuning" / "checkpoint.pt", weights_only=False)["tail"]
    assert not torch.equal(last_epoch["blocks.6.0.conv_pw.weight"], imagenet["blocks.6.0.conv_pw.weight"])  # trained
    images = ParityImages.from_records(run_split_part(trained.card, "test"), limit=6)
    out = torch_outputs(trained.model, images, trained.contract)
    assert out.shape == (len(images.paths), 10) and np.isfinite(out).all()


def test_the_gpu_script_runs_at_reduced_scale_on_the_cpu_and_writes_a_run_export_reads(data, tmp_path):
    """scripts/gpu_tune.sh (issue 21 item 5) with DEVICE=cpu on the tiny sets: every stage tuned from the
    pixels, the run folder loadable as export loads it."""
    import os
    import subprocess
    import sys

    from conftest import ROOT
    from diqa_edge.models.load import load_trained

    env = {**os.environ, "DEVICE": "cpu", "EPOCHS": "1", "PYTHON": sys.executable,
           "DIQA_EDGE_CACHE": str(tmp_path / "cache"), "OUT": str(tmp_path / "run")}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_tune.sh"), "--input-size", str(SIZE),
                           "--dataset-dir", f"biq2021={data['biq2021']}", "--dataset-dir", f"derm={data['derm']}"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    trained = load_trained(tmp_path / "run")
    tuning = trained.card["tuning"]
    assert tuning["from"] == "pixels" and tuning["epochs"] == 1
    assert tuning["tuned_modules"][:2] == ["conv_stem", "bn1"] and tuning["images"] == trained.card["n_train"]["biq2021"]
    assert "SROCC" in done.stdout and "run folder" in done.stdout


def test_the_trainer_predicts_what_the_reduced_module_computes():
    """KernelFit with a rank (the trainer's predictions, on which the rule is chosen) and the exported
    module (KernelScore.reduced) hold the same numbers: one score either way."""
    import numpy as np
    import torch
    from sklearn.svm import SVR

    from diqa_edge.models.pooled_stats import KernelScore
    from diqa_edge.training.feature_model import KernelFit

    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 12))
    y = x[:, 0] - x[:, 1] ** 2 + 5
    mean, scale = x.mean(0), x.std(0) + 1e-6
    svr = SVR(C=2.0, gamma=0.05, epsilon=0.1).fit((x - mean) / scale, y)
    fit = KernelFit(mean, scale, svr, rank=4)
    module = KernelScore(len(svr.support_), 12)
    module.set_fit(mean, scale, svr.support_vectors_, svr.dual_coef_.ravel(), float(svr.intercept_[0]), 0.05)
    module = module.reduced(4)
    test = rng.normal(size=(9, 12))
    with torch.no_grad():
        got = module(torch.from_numpy(test.astype(np.float32))).numpy().ravel()
    np.testing.assert_allclose(fit.predict(test), got, atol=1e-3)
    assert np.abs(KernelFit(mean, scale, svr).predict(test) - got).max() > 1e-3   # not the full kernel


def test_settings_from_the_shipped_card_are_the_shipped_settings(tmp_path):
    """`diqa-edge train --settings-from diqa_edge/models/run` trains the shipped recipe (issue 33: the README's
    command cannot drift from the card), and a recipe option beside it is refused, not ignored."""
    import argparse
    import json
    import subprocess
    import sys
    from dataclasses import asdict

    from conftest import ROOT
    from diqa_edge.errors import DiqaError
    from diqa_edge.training.cli import add_arguments, settings_from_card

    run = ROOT / "diqa_edge" / "models" / "run"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    skin_sets = []
    for name in ("derm", "phone"):          # a machine that built the skin sets (their manifests are enough here)
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.csv").write_text("image,mos\n")
        skin_sets += ["--dataset-dir", f"{name}={tmp_path / name}"]
    config, out = settings_from_card(parser.parse_args(["--model", "pooled-stats", "--settings-from", str(run),
                                                        "--out", "x", *skin_sets]))
    shipped = json.loads((run / "card.json").read_text())
    expected = {("ridge_skin_weight" if k == "skin_weight" else k): v for k, v in shipped["config"].items()}
    got = asdict(config)
    assert {k: v for k, v in got.items() if k != "dataset_dirs"} == \
        {k: v for k, v in expected.items() if k != "dataset_dirs"}
    assert sorted(got["dataset_dirs"]) == sorted(shipped["trained_on"])
    assert got["dataset_dirs"]["phone"] == str(tmp_path / "phone")
    # the statistics the heads are fitted on and the rule's margin may be chosen anew beside the card's recipe
    anew, _ = settings_from_card(parser.parse_args(["--model", "pooled-stats", "--settings-from", str(run),
                                                    "--out", "x", *skin_sets, "--statistics-from", "other.tflite",
                                                    "--rule-margin", "pooled"]))
    assert (anew.statistics_from, anew.rule_margin) == ("other.tflite", "pooled")
    assert asdict(anew) == {**got, "statistics_from": "other.tflite", "rule_margin": "pooled"}
    missing = parser.parse_args(["--model", "pooled-stats", "--settings-from", str(run), "--out", "x",
                                 "--dataset-dir", f"derm={tmp_path / 'nothing'}"])
    with pytest.raises(DiqaError, match="no skin set there"):
        settings_from_card(missing)
    proc = subprocess.run([sys.executable, "-m", "diqa_edge.cli", "train", "--model", "pooled-stats",
                           "--settings-from", str(run), "--score-rank", "64", "--out", "x"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "drop --score-rank" in proc.stderr, proc.stderr
