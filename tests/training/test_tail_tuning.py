"""Fine-tuning the late stages from an activation cache (issue 21 item 2): the cache is read, not
recomputed, on a second run (counted), a changed contract or backbone gets its own cache, the split at
the cut computes exactly the frozen model's statistics, and a tuning run learns, resumes and refuses a
folder of another configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLES

torch = pytest.importorskip("torch", reason="full install only")

SIZE = 64


@pytest.fixture(scope="module")
def lite0():
    from diqa_edge.models.network import build_model

    return build_model("efficientnet_lite0", pretrained=True, input_size=SIZE)


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    return sorted(SAMPLES.glob("*.jpg"))[:8]


def _activations(photos, built, root, backbone="efficientnet_lite0", cut="block4"):
    from diqa_edge.training.tail_tuning import cached_activations

    return cached_activations(photos, built.model.backbone, cut, built.contract, built.weights, backbone,
                              root=root, progress=False)


def test_second_run_reads_the_cache_and_a_changed_contract_or_backbone_recomputes(lite0, photos, tmp_path):
    from diqa_edge.models.network import build_model
    from diqa_edge.identity import image_id

    first = _activations(photos, lite0, tmp_path)
    assert first.computed == len(photos)
    again = _activations(photos, lite0, tmp_path)
    assert again.computed == 0 and again.folder == first.folder           # counted: nothing recomputed
    ids = [image_id(p) for p in photos]
    assert np.array_equal(again.read(ids), first.read(ids))
    assert first.read(ids[:1]).shape == (1, 112, SIZE // 16, SIZE // 16)  # stage 5's output: 112 channels, /16

    bigger = build_model("efficientnet_lite0", pretrained=True, input_size=SIZE + 32)   # another contract
    other = _activations(photos, bigger, tmp_path)
    assert other.folder != first.folder and other.computed == len(photos)
    lite1 = build_model("efficientnet_lite1", pretrained=True, input_size=SIZE)
    other = _activations(photos, lite1, tmp_path, backbone="efficientnet_lite1")
    assert other.folder != first.folder and other.computed == len(photos)
    later_cut = _activations(photos, lite0, tmp_path, cut="block5")
    assert later_cut.folder != first.folder and later_cut.computed == len(photos)


def test_the_tail_on_cached_activations_computes_the_frozen_models_statistics(lite0, photos, tmp_path):
    from diqa_edge.models.pooled_stats import PooledStats, stage_columns
    from diqa_edge.sdk.preprocess import preprocess
    from diqa_edge.identity import image_id
    from diqa_edge.training.tail_tuning import Tail

    stages = ("block0", "block1", "block2", "block3", "block4", "block5", "block6")
    net = lite0.model.backbone
    x = torch.from_numpy(np.concatenate([preprocess(p, lite0.contract, layout="NCHW").reshape(1, 3, SIZE, SIZE)
                                         for p in photos]))
    frozen = PooledStats(net, stages).eval()
    with torch.no_grad():
        want = frozen(x).numpy()
    cache = _activations(photos, lite0, tmp_path)
    early = want[:, stage_columns(frozen, stages[:5])]
    tail = Tail(net, "block4", stages, np.zeros(want.shape[1]), np.ones(want.shape[1])).eval()
    with torch.no_grad():
        got = tail.features(torch.from_numpy(cache.read([image_id(p) for p in photos])),
                            torch.from_numpy(early)).numpy()
    assert got.shape == want.shape
    late = slice(early.shape[1], None)   # the tail's own statistics, from fp16-stored activations
    assert np.abs(got[:, late] - want[:, late]).max() < 0.02 * np.abs(want[:, late]).max()
    from_pixels = Tail(net, None, stages, np.zeros(want.shape[1]), np.ones(want.shape[1])).eval()
    with torch.no_grad():
        np.testing.assert_allclose(from_pixels.features(x, None).numpy(), want, rtol=1e-4, atol=1e-4)


def test_tuning_learns_resumes_and_refuses_another_configuration(lite0, photos, tmp_path):
    from diqa_edge.data.records import Record
    from diqa_edge.training.tail_tuning import Inputs, Tail, TailConfig, rows_for, tail_outputs, tune_tail

    mos = np.linspace(2, 9, len(photos))
    records = [Record(image=p, name=p.name, mos_native=float(m), mos=float(m), group=p.name, dataset="t")
               for p, m in zip(photos, mos)]
    cache = _activations(photos, lite0, tmp_path)
    width = 2 * (16 + 24 + 40 + 80 + 112 + 192 + 320)
    early_width = 2 * (16 + 24 + 40 + 80 + 112)
    rows = rows_for(records, np.zeros((len(photos), early_width), np.float32))
    stages = "block0,block1,block2,block3,block4,block5,block6"
    inputs = Inputs(cache, lite0.contract)
    start = tail_outputs(Tail(lite0.model.backbone, "block4", stages, np.zeros(width), np.ones(width)), inputs, rows,
                         features=True)
    tail = Tail(lite0.model.backbone, "block4", stages, start.mean(axis=0), start.std(axis=0) + 1e-3)
    with torch.no_grad():   # the score starts at the mean MOS: the loss starts at the labels' variance
        tail.head.weight.zero_()
        tail.head.bias.fill_(float(mos.mean()))
    config = TailConfig(cut="block4", epochs=6, batch_size=4, lr=1e-3)
    log = tune_tail(tail, inputs, rows, rows, config, tmp_path / "run", progress=False)
    assert [h["epoch"] for h in log["history"]] == list(range(7)) and log["images"] == 6 * len(photos)
    first, last = log["history"][1]["train_mse"], log["history"][-1]["train_mse"]
    assert last < 0.5 * first, log["history"]
    assert log["best_val_srocc"] > 0.9 and log["best_val_srocc"] == max(h["val_srocc"] for h in log["history"][1:])

    again = tune_tail(tail, inputs, rows, rows, config, tmp_path / "run", progress=False)
    assert again["images"] == log["images"]                   # resumed at its last epoch: nothing more to do
    with pytest.raises(ValueError, match="another configuration"):
        tune_tail(tail, inputs, rows, rows, TailConfig(cut="block4", epochs=6, lr=1e-3), tmp_path / "run",
                  progress=False)
