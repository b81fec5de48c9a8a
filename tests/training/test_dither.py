"""Sub-grey-level dither augmentation and the ablation's noise-sensitivity column, on the sample photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diqa_edge.ablation.run import noise_sensitivity
from diqa_edge.training.inputs import TrainImages
from diqa_edge.models.network import contract_for
from test_trainer import sample_records

CONTRACT = contract_for("efficientnet_lite0", 64)


def _images(dither: float) -> TrainImages:
    recs = sample_records()
    return TrainImages(recs, CONTRACT, np.ones(len(recs), np.float32), seed=3, cache_dir=None, dither=dither)


def test_dither_moves_pixels_by_at_most_its_amplitude_and_repeats_per_seed():
    clean, dithered = _images(0.0), _images(2.0)
    grey = torch.tensor(CONTRACT.std).view(3, 1, 1) * 255   # one normalised unit in grey levels
    amplitudes = []
    for i in range(len(clean)):
        a, b = clean[i][0], dithered[i][0]
        diff = ((b - a) * grey).abs()
        # same crop and flip as the clean image; only sub-2-level noise added (clipping can only shrink it)
        assert float(diff.max()) <= 2.0 + 1e-3
        amplitudes.append(float(diff.max()))
        assert torch.equal(b, _images(2.0)[i][0])        # keyed by (seed, epoch, index): resumes exactly
    # amplitudes are drawn per image from [0, 2]: they differ, and some noise is present
    assert len({round(a, 2) for a in amplitudes}) > 1 and max(amplitudes) > 0.5


class _Mean(torch.nn.Module):
    """Scores the mean brightness: invisible noise averages out."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3), keepdim=False).unsqueeze(1) + 5.0


class _Texture(torch.nn.Module):
    """Scores pixel-to-pixel differences, like a noise detector does."""

    def forward(self, x):
        return 100 * (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean(dim=(1, 2, 3)).unsqueeze(1)


def test_noise_sensitivity_separates_a_texture_detector_from_a_brightness_meter():
    recs = sample_records()
    flat = noise_sensitivity(_Mean(), recs, CONTRACT, n=8)
    sharp = noise_sensitivity(_Texture(), recs, CONTRACT, n=8)
    assert flat["n"] == sharp["n"] == min(8, len(recs)) and flat["levels"] == 0.5
    assert flat["mean"] < 1e-3
    assert sharp["mean"] > 50 * flat["mean"] and sharp["max"] >= sharp["mean"]


class _Outputs(torch.nn.Module):
    """The trainer's calling convention: model(x, training_outputs=True) -> (score, reason logits)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, training_outputs=False):
        return self.inner(x), None


def test_consistency_term_is_the_mean_squared_score_change_under_one_level_noise():
    from diqa_edge.training.trainer import noise_consistency

    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    grey = torch.tensor(CONTRACT.std).view(1, 3, 1, 1) * 255
    flat, sharp = _Outputs(_Mean()), _Outputs(_Texture())
    # a brightness meter hardly moves; a texture detector moves by about 100 x its mean |noise difference|
    assert float(noise_consistency(flat, x, flat(x)[0].view(-1), grey)) < 1e-4
    term = float(noise_consistency(sharp, x, sharp(x)[0].view(-1), grey))
    assert 1e-3 < term < 10
    # it carries a gradient to the model (it is a loss term, not a metric)
    lin = torch.nn.Conv2d(3, 1, 3)
    model = _Outputs(torch.nn.Sequential(lin, torch.nn.Flatten(), torch.nn.LazyLinear(1)))
    model(x)
    noise_consistency(model, x, model(x)[0].view(-1), grey).backward()
    assert lin.weight.grad is not None and float(lin.weight.grad.abs().sum()) > 0


def test_dither_and_consistency_train_and_resume_exactly(tmp_path):
    from test_trainer import _train, tiny_config

    recs = sample_records()
    kw = dict(dither=2.0, consistency_weight=10.0)
    full = _train(recs[:8], recs[8:], tiny_config(tmp_path, **kw), tmp_path / "full")
    _train(recs[:8], recs[8:], tiny_config(tmp_path, stop_after_epochs=1, **kw), tmp_path / "cut")
    resumed = _train(recs[:8], recs[8:], tiny_config(tmp_path, **kw), tmp_path / "cut")
    assert resumed.history[1]["train_loss"] == pytest.approx(full.history[1]["train_loss"], rel=1e-6)
    # the term is in the loss: the same run without it reports another loss
    plain = _train(recs[:8], recs[8:], tiny_config(tmp_path, dither=2.0), tmp_path / "plain")
    assert plain.history[0]["train_loss"] != pytest.approx(full.history[0]["train_loss"], rel=1e-6)
