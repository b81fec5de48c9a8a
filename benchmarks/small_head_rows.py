"""How small can the score head get (#34 item 3)? Each lever as a row, on the shipped run's features.

The shipped SVR stores 3,522 support vectors of 1,568 statistics: 22 MB of the 25.7 MB phone file.
Every lever here changes only that head, so it is measured on the pooled statistics the frozen
trunk computes (PyTorch's numbers, cached under the project cache), against the shipped head:
- held-out BIQ2021 SROCC (the run's 1,200 test photos, human MOS);
- on the held-out skin views (the run's test photos, never seen by the head or its rule), the share
  with the same accept / retake answer and the same hint under the shipped manifest's rule;
- the numbers the head stores and their bytes (what the phone file carries for it).

Levers: the centre matrix stored in fp16 or int8 (per-centre scale, ``pooled_stats.int8_per_row``);
the centres in their r leading singular directions (``KernelScore.reduced``: only the cross term u.c
is approximated), in float32 and with both matrices in int8 as the phone file stores them; the same
with the dual coefficients refitted to the shipped head's scores on the validation views (least
squares, never the test part); a reduced set (the centres of largest |dual coefficient|, no refit).
Run on the full-rank run (``--run``, default: the previous run folder as committed in 187f5be,
kept at ``~/.cache/diqa-edge/runs/svr512skin-full``).

    python benchmarks/small_head_rows.py --run ~/.cache/diqa-edge/runs/svr512skin-full \
        --out benchmarks/results/small_head_rows.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

RANKS = (64, 128, 256, 384, 512, 768)
KEEP = (1000, 2000, 3000)   # centres kept by |dual coefficient|


def head_outputs(model, kernel, feats: np.ndarray) -> np.ndarray:
    """[score, p(reason)...] with ``kernel`` as the score head, clamped as the SDK clamps."""
    shipped = model.kernel
    model.kernel = kernel
    try:
        with torch.inference_mode():
            out = model.from_features(torch.from_numpy(feats)).double().numpy()
    finally:
        model.kernel = shipped
    out[:, 0] = np.clip(out[:, 0], 1.0, 10.0)
    return out


def quantised_centres(kernel, dtype: str):
    """The kernel with its centre matrix rounded as the file would store it (fp16, or int8 per centre)."""
    out = type(kernel)(*kernel.centres.shape[:1], kernel.mean.shape[0],
                       None if kernel.basis is None else kernel.basis.shape[1])
    out.load_state_dict(kernel.state_dict())
    with torch.no_grad():
        out.centres.copy_(rounded(kernel.centres, dtype))
        if kernel.basis is not None:   # the file stores the basis the same way, one scale per output column
            out.basis.copy_(rounded(kernel.basis.T, dtype).T)
    return out


def rounded(matrix: torch.Tensor, dtype: str) -> torch.Tensor:
    """``matrix`` as the file stores it: fp16, or int8 per row by the export's own rule."""
    from diqa_edge.models.pooled_stats import int8_per_row

    if dtype == "fp16":
        return matrix.half().float()
    q, scale = int8_per_row(matrix.numpy())
    return torch.from_numpy(q.astype(np.float32) * scale[:, None])


def largest_duals(kernel, keep: int):
    """The kernel with only the ``keep`` centres of largest |dual coefficient| (a reduced set, no refit)."""
    pick = torch.argsort(kernel.dual.abs().ravel(), descending=True)[:keep]
    out = type(kernel)(keep, kernel.mean.shape[0])
    state = kernel.state_dict()
    state.update(centres=kernel.centres[pick], centre_sq=kernel.centre_sq[pick], dual=kernel.dual[pick])
    out.load_state_dict(state)
    return out


def refit_dual(kernel, feats: np.ndarray, target: np.ndarray):
    """Dual coefficients and intercept by least squares to ``target`` (the shipped head's scores)."""
    with torch.no_grad():
        f = torch.from_numpy(feats)
        u = (f - kernel.mean) * kernel.inv_scale
        p = u if kernel.basis is None else u @ kernel.basis
        d2 = (u * u).sum(dim=1, keepdim=True) - 2 * p @ kernel.centres.T + kernel.centre_sq
        k = torch.exp(-kernel.gamma * torch.clamp(d2, min=0.0)).double().numpy()
    design = np.column_stack([k, np.ones(len(k))])
    ridge = 1e-3 * np.eye(design.shape[1])
    coef = np.linalg.solve(design.T @ design + ridge, design.T @ target)
    with torch.no_grad():
        kernel.dual.copy_(torch.from_numpy(coef[:-1]).float().reshape(-1, 1))
        kernel.intercept.fill_(float(coef[-1]))
    return kernel


def row(name: str, stored: int, bytes_each: int, outputs: dict, reference: dict, parts: dict, rule, names) -> dict:
    from diqa_edge.eval.metrics import srocc
    from diqa_edge.sdk.hints import row_answers

    biq = parts["biq2021"]
    pairs = list(zip(row_answers(outputs["derm"], rule, names), row_answers(reference["derm"], rule, names)))
    same = np.array([a == b for a, b in pairs])
    same_answer = np.array([a[0] == b[0] for a, b in pairs])
    return {"lever": name, "head_numbers": int(stored), "head_mb": round(stored * bytes_each / 1e6, 2),
            "biq2021_srocc": round(float(srocc(outputs["biq2021"][:, 0], np.array([r.mos for r in biq]))), 4),
            "max_abs_score_vs_shipped": round(float(np.abs(outputs["derm"][:, 0] - reference["derm"][:, 0]).max()), 3),
            "skin_same_answer": round(float(same_answer.mean()), 4), "skin_same_hint": round(float(same.mean()), 4),
            "n_biq2021": len(biq), "n_skin_views": len(parts["derm"])}


def main(argv=None) -> int:
    from diqa_edge.data.splits import run_split_part
    from diqa_edge.cachedir import cache_root
    from diqa_edge.models.load import load_trained
    from diqa_edge.training.feature_model import run_features

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=cache_root() / "runs" / "svr512skin-full",
                        help="a run folder with the full SVR head (default: the cache's svr512skin-full, the run "
                             "folder of 187f5be: git show 187f5be:diqa_edge/models/run/FILE for its three files)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/small_head_rows.json"))
    args = parser.parse_args(argv)

    trained = load_trained(args.run)
    model, kernel = trained.model, trained.model.kernel
    names = tuple(trained.card["outputs"][1:])
    rule = trained.rule
    test, val = run_split_part(trained.card, "test"), run_split_part(trained.card, "val")
    parts = {d: [r for r in test if r.dataset == d] for d in ("biq2021", "derm")}
    if not parts["derm"]:
        raise SystemExit("the skin views are not on this machine: diqa-edge make-skin-set ../shared/data/skin-cc0/images")
    feats = {d: run_features(trained, recs, f"test {d}") for d, recs in parts.items()}
    fit_feats = run_features(trained, val, "validation")
    reference = {d: head_outputs(model, kernel, f) for d, f in feats.items()}
    teacher_val = head_outputs(model, kernel, fit_feats)[:, 0]

    n, width = kernel.centres.shape
    full = n * width + n + 2 * width
    rows = [row("shipped: fp32 centres (fp16-exact values)", full, 4, reference, reference, parts, rule, names)]
    for dtype, size in (("fp16", 2), ("int8", 1)):
        k = quantised_centres(kernel, dtype)
        rows.append(row(f"centres in {dtype}", full, size, {d: head_outputs(model, k, f) for d, f in feats.items()},
                        reference, parts, rule, names))
    for keep in KEEP:
        k = largest_duals(kernel, keep)
        rows.append(row(f"{keep} centres of largest |dual|", keep * (width + 2) + 2 * width, 4,
                        {d: head_outputs(model, k, f) for d, f in feats.items()}, reference, parts, rule, names))
    for rank in RANKS:
        k = kernel.reduced(rank)
        stored = (n + width) * rank + n + 2 * width
        rows.append(row(f"rank {rank}", stored, 4, {d: head_outputs(model, k, f) for d, f in feats.items()},
                        reference, parts, rule, names))
        kq = quantised_centres(k, "int8")
        rows.append(row(f"rank {rank}, basis and coordinates in int8 (per row, as the file)", stored, 1,
                        {d: head_outputs(model, kq, f) for d, f in feats.items()}, reference, parts, rule, names))
        k = refit_dual(k, fit_feats, teacher_val)
        rows.append(row(f"rank {rank}, dual refitted on validation views", stored, 4,
                        {d: head_outputs(model, k, f) for d, f in feats.items()}, reference, parts, rule, names))
        print(*(json.dumps(r) for r in rows[-3:]), sep="\n", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "n_fit_views": len(val)}, indent=1) + "\n")
    from diqa_edge.eval.report import markdown_table
    print("\n".join(markdown_table(list(rows[0]), [list(r.values()) for r in rows])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
