"""Synthetic views of a training part: anchored pseudo-MOS, source groups, cached, never from val/test."""

from __future__ import annotations

import io
import warnings

from helpers import layouts
import numpy as np
from PIL import Image

from conftest import SAMPLES
from diqa_edge.contract import DEFAULT_CONTRACT as C
from diqa_edge.data.dermset import resize_long_side, ssim_rgb
from diqa_edge.data.distort import PAPER_RECIPE
from diqa_edge.data.records import Record
from diqa_edge.data.synthetic import anchored_mos, synthetic_views
from diqa_edge.sdk.decode import decode_image
from diqa_edge.training.experiments import ExperimentConfig, _parts, training_pool
from diqa_edge.data.registry import load_dataset
from diqa_edge.training.trainer import TrainConfig


def _sources(tmp_path, mos=(8.0, 5.5, 3.0)):
    names = ["skin_ISIC_0000051.jpg", "photo_coffee.jpg", "skin_ISIC_0000083.jpg"]
    records = []
    for i, (name, m) in enumerate(zip(names, mos)):
        path = tmp_path / "src" / f"p{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(resize_long_side(decode_image(SAMPLES / name, C), 96)).save(path)
        records.append(Record(image=path, name=f"p{i}.png", mos_native=m, mos=m, group=f"g{i}", dataset="biq"))
    return records


def test_anchored_mos_keeps_the_source_as_the_ceiling():
    assert anchored_mos(7.0, 1.0) == 7.0
    assert anchored_mos(7.0, 0.5) == 4.0
    assert anchored_mos(7.0, -0.2) == 1.0     # SSIM below 0 is clipped: the floor of the scale


def test_views_carry_their_source_group_and_an_ssim_anchored_mos(tmp_path):
    sources = _sources(tmp_path)
    views = synthetic_views(sources, 10, tmp_path / "views", seed=3, workers=1, progress=False)
    assert len(views) == 10 and len({v.name for v in views}) == 10
    by_group = {r.group: r for r in sources}
    recipe = {f for f, _ in PAPER_RECIPE}
    for v in views:
        src = by_group[v.group]
        assert v.dataset == "biq-synth" and v.pseudo and v.distortion in recipe
        assert v.image.name.startswith(src.image.stem + "__") and v.image.exists()
        # recompute the label from the files: 1 + (source MOS - 1) x SSIM(source, view as stored)
        ssim = ssim_rgb(np.asarray(Image.open(src.image).convert("RGB")),
                        np.asarray(Image.open(io.BytesIO(v.image.read_bytes())).convert("RGB")))
        assert abs(v.mos - anchored_mos(src.mos, ssim)) < 1e-3
        assert 1.0 <= v.mos < src.mos
    # more views than (source, distortion) pairs: each pair once, no duplicates
    everything = synthetic_views(sources[:1], 100, tmp_path / "all", workers=1, progress=False)
    assert len(everything) == len(PAPER_RECIPE)


def test_a_rerun_reuses_the_files_and_a_bad_source_is_skipped_not_fatal(tmp_path, caplog):
    sources = _sources(tmp_path)
    first = synthetic_views(sources, 6, tmp_path / "views", seed=1, workers=2, progress=False)
    stamps = {v.image: v.image.stat().st_mtime_ns for v in first}
    again = synthetic_views(sources, 6, tmp_path / "views", seed=1, workers=1, progress=False)
    assert again == first and {v.image: v.image.stat().st_mtime_ns for v in again} == stamps
    broken = tmp_path / "src" / "broken.png"
    broken.write_bytes(b"not an image")
    bad = Record(image=broken, name="broken.png", mos_native=6.0, mos=6.0, group="gb", dataset="biq")
    views = synthetic_views(sources + [bad], 40, tmp_path / "mixed", seed=2, workers=1, progress=False)
    assert views and all(v.group != "gb" for v in views)
    assert "skipped a source" in caplog.text   # a warning through logging (shown by the CLI)


def test_the_training_pool_makes_views_only_from_training_photos(tmp_path):
    layouts.kadid(tmp_path / "kadid", refs=10)
    config = ExperimentConfig(datasets=["kadid"], dataset_dirs={"kadid": str(tmp_path / "kadid")},
                              synthetic_views=30,
                              train=TrainConfig(input_size=32, pretrained=False, progress=False))
    loaded = {"kadid": load_dataset("kadid", tmp_path / "kadid")}
    parts = _parts(config, loaded, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pool = training_pool(config, parts, ["kadid"], 0, tmp_path / "exp")
    synth = [r for r in pool if r.dataset == "kadid-synth"]
    assert len(pool) == len(parts["kadid"]["train"]) + 30 and len(synth) == 30
    train_groups = {r.group for r in parts["kadid"]["train"]}
    held_groups = {r.group for p in ("val", "test") for r in parts["kadid"][p]}
    assert held_groups and {r.group for r in synth} <= train_groups
    assert not {r.group for r in synth} & held_groups
