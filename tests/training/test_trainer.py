"""Training runs for real on tiny inputs: resume continues exactly; DDP ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import ROOT, SAMPLES
from diqa_edge.data.records import Record
from diqa_edge.training.trainer import TrainConfig, train


def sample_records() -> list[Record]:
    photos = sorted(SAMPLES.glob("*.jpg"))
    mos = np.linspace(2, 9, len(photos))
    return [Record(image=p, name=p.name, mos_native=m, mos=m, group=p.name, dataset="samples")
            for p, m in zip(photos, mos)]


def tiny_config(tmp_path, **kw) -> TrainConfig:
    base = dict(backbone="efficientnet_lite0", input_size=64, pretrained=False, epochs=2, batch_size=4,
                cache_dir=str(tmp_path / "cache"), progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _train(*args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(*args)


def test_resume_gives_the_same_next_epoch_loss(tmp_path):
    recs = sample_records()
    full = _train(recs[:8], recs[8:], tiny_config(tmp_path), tmp_path / "full")
    part = _train(recs[:8], recs[8:], tiny_config(tmp_path, stop_after_epochs=1), tmp_path / "cut")
    assert len(part.history) == 1 and not part.finished
    assert not (tmp_path / "cut" / "history.json").exists()
    resumed = _train(recs[:8], recs[8:], tiny_config(tmp_path), tmp_path / "cut")
    assert resumed.finished and len(resumed.history) == 2
    assert resumed.history[1]["train_loss"] == pytest.approx(full.history[1]["train_loss"], rel=1e-6)
    assert resumed.history[1]["val_plcc"] == pytest.approx(full.history[1]["val_plcc"], abs=1e-6)
    assert full.history[0]["train_loss"] != full.history[1]["train_loss"]
    for name in ("best.safetensors", "last.pt", "curves.png", "history.json"):
        assert (tmp_path / "cut" / name).exists()


def test_resume_refuses_another_configuration(tmp_path):
    recs = sample_records()
    _train(recs[:8], recs[8:], tiny_config(tmp_path, epochs=1), tmp_path / "run")
    with pytest.raises(ValueError, match="another configuration"):
        _train(recs[:8], recs[8:], tiny_config(tmp_path, epochs=1, max_lr=1e-3), tmp_path / "run")


def _free_port() -> int:
    """A port nobody listens on now (another run of the suite on this machine must not collide)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_with_gloo_end_with_identical_weights(tmp_path):
    script = tmp_path / "ddp_probe.py"
    script.write_text(DDP_WEIGHTS_SCRIPT)
    # the probe imports this module's helpers (test_trainer) and conftest's: both folders on its path
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "training")]))
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                          f"--master_port={_free_port()}", str(script), str(tmp_path)],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["backend"] == "gloo" for r in ranks)
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["changed"] and ranks[1]["changed"]   # training moved the weights


DDP_WEIGHTS_SCRIPT = r"""
import hashlib, json, sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
import torch
import torch.distributed as dist
import diqa_edge.training.trainer as trainer
from test_trainer import sample_records, tiny_config

captured = {}
original = trainer.build_model
def capture(*a, **k):
    built = original(*a, **k)
    captured["model"] = built.model
    captured["start"] = {n: t.clone() for n, t in built.model.state_dict().items()}
    return built
trainer.build_model = capture

out = Path(sys.argv[1])
recs = sample_records()
trainer.train(recs[:8], recs[8:], tiny_config(out, epochs=1, input_size=32), out / "run")
rank = dist.get_rank()
state = captured["model"].state_dict()
digest = hashlib.sha256(b"".join(state[k].detach().float().numpy().tobytes() for k in sorted(state))).hexdigest()
changed = any(not torch.equal(state[k], captured["start"][k]) for k in state)
(out / f"rank{rank}.json").write_text(json.dumps({"world": dist.get_world_size(), "backend": dist.get_backend(),
                                                  "digest": digest, "changed": changed}))
dist.destroy_process_group()
"""


def test_reasons_head_and_affine_alignment_train_and_resume_exactly(tmp_path):
    """Two datasets (one pseudo-MOS with distortion labels), reasons head + affine maps: a cut and
    resumed run ends where an uninterrupted one does, maps and head included."""
    from dataclasses import replace

    from safetensors.torch import load_file

    recs = sample_records()
    families = ["none", "gaussian_blur", "darken", "jpeg", "none", "brighten"]
    mixed = [replace(r, dataset="derm", pseudo=True, distortion=families[i % len(families)], level=1)
             if i % 2 else r for i, r in enumerate(recs)]
    kw = dict(reason_loss_weight=1.0, align="affine")
    full = _train(mixed[:8], mixed[8:], tiny_config(tmp_path, **kw), tmp_path / "full")
    _train(mixed[:8], mixed[8:], tiny_config(tmp_path, stop_after_epochs=1, **kw), tmp_path / "cut")
    resumed = _train(mixed[:8], mixed[8:], tiny_config(tmp_path, **kw), tmp_path / "cut")
    assert resumed.history[1]["train_loss"] == pytest.approx(full.history[1]["train_loss"], rel=1e-6)
    assert resumed.alignment == full.alignment and resumed.alignment["reference"] == "samples"
    assert resumed.alignment["derm"]["scale"] != 1.0        # the map moved off its start
    assert "reason_head.weight" in load_file(str(tmp_path / "cut" / "best.safetensors"))
