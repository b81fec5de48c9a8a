"""The reasons head and per-dataset MOS alignment: targets, losses, the affine maps, the output tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diqa_edge.data.distort import FAMILIES, REASONS, reason_target
from diqa_edge.sdk.hints import GENERIC, HINTS, hint_for, top_reason
from diqa_edge.training.alignment import DatasetAffine, reference_dataset
from diqa_edge.training.losses import reason_loss
from diqa_edge.training.metrics import reason_aucs
from diqa_edge.training.trainer import TrainConfig


def test_reason_targets_follow_the_families():
    assert reason_target(None) is None                      # authentic photo: no label
    assert reason_target("none").sum() == 0                 # pristine: no reason
    blur = reason_target("motion_blur")
    assert blur[REASONS.index("blur")] == 1 and blur.sum() == 1
    assert reason_target("darken")[REASONS.index("dark")] == 1
    assert reason_target("pixelate")[REASONS.index("jpeg")] == 1
    from diqa_edge.data.camera import CAMERA_FAMILIES

    # every reason is named by a fault family: the paper's recipe or the camera's own (glare, obstruction)
    assert {f.reason for f in FAMILIES.values()} | {f.reason for f in CAMERA_FAMILIES.values()} == set(REASONS)
    with pytest.raises(KeyError, match="warp"):
        reason_target("warp")


def test_every_reason_has_a_patient_hint_and_the_hint_rules():
    assert set(HINTS) == set(REASONS)
    assert all(h.hint.endswith(".") and len(h.hint) < 90 for h in HINTS.values())
    assert top_reason({"blur": 0.9, "dark": 0.2}) == "blur"
    assert top_reason({"blur": 0.4, "dark": 0.3}) is None
    assert hint_for({"blur": 0.9}, acceptable=False) == HINTS["blur"]
    assert hint_for({"blur": 0.1}, acceptable=False) == GENERIC
    assert hint_for({"blur": 0.1}, acceptable=True) is None
    assert hint_for({"blur": 0.9}, acceptable=True) is None      # accepted: no hint
    assert hint_for({}, acceptable=True) is None


def test_reason_loss_counts_only_images_with_known_distortion():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5], [9.0, 9.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    known = torch.tensor([1.0, 1.0, 0.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:2], target[:2])
    assert float(reason_loss(logits, target, known)) == pytest.approx(float(expected), rel=1e-6)
    assert float(reason_loss(logits, target, torch.zeros(3))) == 0.0


def test_dataset_affine_learns_a_known_map_and_keeps_the_reference_fixed():
    torch.manual_seed(0)
    affine = DatasetAffine(["biq2021", "derm"], reference="biq2021")
    score = torch.rand(512) * 6 + 2
    where = affine.index(["biq2021", "derm"] * 256)
    truth = torch.where(where == 0, score, 1.6 * score - 2.5)
    opt = torch.optim.Adam(affine.parameters(), lr=0.05)
    for _ in range(600):
        loss = ((affine(score, where) - truth) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    maps = affine.to_dict()
    assert maps["biq2021"] == {"scale": 1.0, "shift": 0.0} and maps["reference"] == "biq2021"
    assert maps["derm"]["scale"] == pytest.approx(1.6, abs=0.02)
    assert maps["derm"]["shift"] == pytest.approx(-2.5, abs=0.1)
    assert reference_dataset(["derm", "biq2021"], {"derm": True}) == "biq2021"


def test_model_with_reasons_head_outputs_score_then_probabilities():
    from diqa_edge.models.network import build_model

    torch.manual_seed(0)
    with pytest.warns(UserWarning):
        built = build_model("efficientnet_b0", pretrained=False, input_size=64, reasons=REASONS)
    model = built.model.eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        out = model(x)
        score, logits = model.outputs(x)
    assert out.shape == (3, 1 + len(REASONS)) and model.output_names == ("score",) + REASONS
    assert torch.equal(out[:, :1], score)
    assert torch.allclose(out[:, 1:], torch.sigmoid(logits)) and bool(((out[:, 1:] > 0) & (out[:, 1:] < 1)).all())


def test_reason_aucs_on_labelled_images_only():
    probs = np.zeros((5, len(REASONS)))
    probs[0, REASONS.index("blur")] = 0.9     # blurred, found
    probs[1, REASONS.index("blur")] = 0.2     # darkened
    probs[2, REASONS.index("blur")] = 0.1     # pristine
    probs[3, REASONS.index("blur")] = 0.95    # authentic photo: not counted
    aucs = reason_aucs(probs, ["gaussian_blur", "darken", "none", None, "motion_blur"], REASONS)
    assert aucs["blur"]["positives"] == 2 and aucs["blur"]["negatives"] == 2
    assert aucs["blur"]["auc"] == pytest.approx(0.5)   # one blurred image found, one missed (p 0)
    assert aucs["dark"]["positives"] == 1 and aucs["bright"]["auc"] is None
    assert reason_aucs(probs[:1], [None], REASONS) == {}


def test_new_train_options_leave_old_checkpoints_resumable():
    old = TrainConfig().identity()
    assert "reason_loss_weight" not in old and "align" not in old
    assert TrainConfig(align="affine", reason_loss_weight=1.0).identity()["align"] == "affine"


def test_linear_probe_separates_reasons_it_can_see_and_ignores_unlabelled_records():
    from diqa_edge.data.records import Record
    from diqa_edge.training.reasons_probe import fit_probe, labelled

    rng = np.random.default_rng(0)
    families = ["none", "gaussian_blur", "darken", "jpeg"]
    recs = [Record(image=None, name=f"{i}", mos_native=5, mos=5, group=f"{i}", dataset="d",
                   distortion=families[i % 4] if i % 5 else None) for i in range(200)]
    kept, targets = labelled(recs)
    assert len(kept) == 160 and targets.shape == (160, len(REASONS))
    # features: one informative direction per reason present, plus noise
    feats = rng.normal(size=(160, 32)).astype(np.float32) + 5 * np.pad(targets, ((0, 0), (0, 32 - len(REASONS))))
    layer, loss = fit_probe(feats[:120], targets[:120], steps=300)
    with torch.inference_mode():
        probs = torch.sigmoid(layer(torch.from_numpy(feats[120:]))).numpy()
    aucs = reason_aucs(probs, [r.distortion for r in kept[120:]], REASONS)
    for reason in ("blur", "dark", "jpeg"):
        assert aucs[reason]["auc"] > 0.9, aucs
    assert loss < 0.2
