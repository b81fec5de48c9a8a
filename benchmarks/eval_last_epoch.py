"""Score a run's last epoch (``last.pt``), not its best one, on its test parts: PLCC / SROCC per dataset
with 95 % bootstrap intervals. Why: to compare runs at the same epoch when their best-epoch choice
differed (``python benchmarks/eval_last_epoch.py runs/align/derm-affine/all/split0``)."""
import json, sys, warnings
from pathlib import Path
import numpy as np, torch
from diqa_edge.models.load import TrainedModel
from diqa_edge.contract import Contract
from diqa_edge.models.network import build_model
from diqa_edge.training.trainer import predict
from diqa_edge.eval.metrics import all_metrics
from diqa_edge.data.splits import run_split_part
run = Path(sys.argv[1])
card = json.loads((run / "card.json").read_text())
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    built = build_model(card["backbone"], pretrained=False, input_size=card["contract"]["input_size"],
                        reasons=tuple(card.get("outputs", ["score"])[1:]))
state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
built.model.load_state_dict(state["model"])
print("epoch", state["epoch"] + 1, "affine", state.get("affine"))
tm = TrainedModel(built.model.eval(), Contract.from_dict(card["contract"]), card, run, "x")
test = run_split_part(tm.card, "test")
for name in sorted({r.dataset for r in test}):
    recs = [r for r in test if r.dataset == name]
    if name == "biq2021":
        rng = np.random.default_rng(0)
        recs = [recs[i] for i in sorted(rng.choice(len(recs), size=min(800, len(recs)), replace=False))] if len(recs) > 800 else recs
    pred = predict(tm.model, recs, tm.contract, cache_dir="cache/images")
    m = all_metrics(pred, np.array([r.mos for r in recs]), ci=True)
    print(name, len(recs), {k: m[k] for k in ("srocc", "srocc_ci", "plcc", "plcc_ci")})
