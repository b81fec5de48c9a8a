"""Put an exported model inside the package as the default that ``diqa-edge score`` uses.

What ships (``diqa_edge/models/``): the int8 TFLite file and its manifest, the
model card, test vectors with their five photos, and ``reference_scores.json``
(PyTorch fp32 scores of real photos: the samples and the first CC0 skin
photos), so the parity tests can prove in CI, without the training weights,
that the shipped file and the SDK still compute what was measured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..cachedir import data_root
from ..data.splits import run_split_part
from ..eval.report import markdown_table
from ..models.file_trunk import fitted_trunk
from ..models.load import MODELS_DIR
from ..fileio import atomic_write_text
from .formats import SAMPLES

DEFAULT = "default"


# Distorted views recorded beside the photos: pristine photos alone score within a narrow band,
# where int8 noise decides the ranking; graded views spread the scores as real use does.
REFERENCE_VIEWS = (("gaussian_blur", 2), ("darken", 1), ("jpeg", 3), ("brighten", 2), ("low_contrast", 3))
N_VIEW_PHOTOS = 10
N_HELDOUT = 100   # held-out BIQ2021 images (names only; the images stay in ../shared/data)


def reference_view(photo: Path, family: str | None, level: int | None, contract):
    """A deterministic distorted view of a skin photo (long side 512, the derm set's recipe)."""
    from ..data.dermset import resize_long_side
    from ..data.distort import distort
    from ..sdk.decode import decode_image

    rgb = resize_long_side(decode_image(photo, contract))
    return rgb if family is None else distort(rgb, family, level)


def reference_scores(trained, photos: list[Path], root_labels: dict[str, str],
                     view_photos: list[Path] = (), heldout: list = ()) -> dict:
    from .parity import ParityImages, torch_scores

    images = ParityImages(list(photos), None)
    scores = torch_scores(trained.model, images, trained.contract)
    rows = [{"set": root_labels.get(str(p.parent), p.parent.name), "image": p.name,
             "pytorch_fp32": round(float(s), 5)} for p, s in zip(images.paths, scores)]
    if heldout:
        held = ParityImages.from_records(list(heldout), limit=len(heldout))
        for p, s_ in zip(held.paths, torch_scores(trained.model, held, trained.contract)):
            rows.append({"set": "biq2021-heldout", "image": p.name, "pytorch_fp32": round(float(s_), 5)})
    views = [(p, f, l) for p in view_photos for f, l in ((None, None),) + REFERENCE_VIEWS]
    if views:
        view_images = ParityImages([p for p, _, _ in views], None,
                                   rgb=[reference_view(p, f, l, trained.contract) for p, f, l in views])
        for (p, f, l), s in zip(views, torch_scores(trained.model, view_images, trained.contract)):
            rows.append({"set": "skin-cc0-views", "image": p.name, "family": f, "level": l,
                         "pytorch_fp32": round(float(s), 5)})
    return {"scores": rows}


def shipped_metrics(path: Path, trained) -> dict:
    """The shipped file through the SDK and the PyTorch model on every test part the model never saw,
    with 95 % bootstrap intervals: the card's claim is about the file an app loads."""
    import numpy as np

    from ..eval.metrics import all_metrics
    from .parity import ParityImages, artefact_scores, torch_scores

    out = {}
    test = run_split_part(trained.card, "test")
    trained_on_it = trained.card.get("test_metrics") or {}
    for name in sorted({r.dataset for r in test}):
        images = ParityImages.from_records([r for r in test if r.dataset == name], limit=10 ** 6)
        shipped = artefact_scores(path, images, trained.contract)
        # PyTorch's figures on the same test part come from the run card (the trainer computed them on
        # these very images); the per-image comparison runs PyTorch on the first COMPARED of them
        head = ParityImages(images.paths[:COMPARED], None)
        reference = torch_scores(trained.model, head, trained.contract)
        # a run fitted on an int8 file's statistics (train --statistics-from) measured its card's figures on
        # those statistics, not through PyTorch: the key says which
        key = ("run_card_int8_statistics" if fitted_trunk(trained.card) is not None and name in trained_on_it
               else "pytorch_fp32")
        out[name] = {"labels": images.labels, "shipped": all_metrics(shipped, images.mos, ci=True),
                     key: trained_on_it.get(name) or all_metrics(
                         torch_scores(trained.model, images, trained.contract), images.mos, ci=True),
                     "max_abs_vs_pytorch": float(np.max(np.abs(shipped[:len(reference)] - reference))),
                     "max_abs_compared_on": len(reference)}
    return out


COMPARED = 100   # test images per data set on which the shipped file is compared with PyTorch image by image


def shipped_markdown(shipped: dict, precision: str) -> str:
    def run_figures(m: dict) -> dict:
        return m.get("pytorch_fp32") or m["run_card_int8_statistics"]

    rows = [[name, m["labels"], m["shipped"]["n"],
             f"{m['shipped']['srocc']:.3f} [{m['shipped']['srocc_ci'][0]:.3f}, {m['shipped']['srocc_ci'][1]:.3f}]",
             f"{m['shipped']['plcc']:.3f} [{m['shipped']['plcc_ci'][0]:.3f}, {m['shipped']['plcc_ci'][1]:.3f}]",
             f"{run_figures(m)['srocc']:.3f}", f"{run_figures(m)['plcc']:.3f}", f"{m['max_abs_vs_pytorch']:.3f}"]
            for name, m in shipped.items()]
    on_file = any("run_card_int8_statistics" in m for m in shipped.values())
    basis = "run card (heads on the int8 statistics)" if on_file else "PyTorch fp32"
    lines = ["", f"## The shipped file ({DEFAULT}.tflite, {precision}) on the held-out test parts", ""]
    lines += markdown_table(["test set", "labels", "n", "shipped SROCC [95 % CI]", "shipped PLCC [95 % CI]",
                             f"{basis} SROCC", f"{basis} PLCC", f"max abs diff vs PyTorch fp32 (first {COMPARED})"],
                            rows)
    if on_file:
        lines += ["", "The run's heads were fitted on the statistics of the int8 trunk this file carries, so the "
                      "run card's figures are the heads on those statistics (computed by the trainer on these "
                      "images); the last column compares the file with the PyTorch model (float trunk)."]
    return "\n".join(lines) + "\n"


def bundle(export_dir: Path, trained, samples: Path, skin: Path | None, n_skin: int = 60,
           precision: str = "int8") -> Path:
    src = next(Path(export_dir).glob(f"*_tflite_{precision}.tflite"))
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    for old in MODELS_DIR.glob(f"{DEFAULT}.*"):
        old.unlink()
    shutil.copy(src, MODELS_DIR / f"{DEFAULT}.tflite")
    shutil.copy(src.with_suffix(".manifest.json"), MODELS_DIR / f"{DEFAULT}.manifest.json")
    vectors = json.loads(src.with_suffix(".vectors.json").read_text())
    vec_dir = MODELS_DIR / "vectors"
    vec_dir.mkdir(exist_ok=True)
    for v in vectors["vectors"]:
        name = Path(v["image"]).name
        shutil.copy(Path(export_dir) / v["image"], vec_dir / name)
        v["image"] = f"vectors/{name}"
    vectors["model"] = f"{DEFAULT}.tflite"
    atomic_write_text(MODELS_DIR / f"{DEFAULT}.vectors.json", json.dumps(vectors, indent=1) + "\n")
    photos = sorted(samples.glob("*.jpg"))
    labels = {str(samples): "samples"}
    view_photos: list[Path] = []
    if skin is not None and skin.exists():
        photos += sorted(skin.glob("*.jpg"))[:n_skin]
        labels[str(skin)] = "skin-cc0"
        view_photos = sorted(skin.glob("*.jpg"))[n_skin:n_skin + N_VIEW_PHOTOS]
    heldout = [r for r in run_split_part(trained.card, "test") if r.dataset == "biq2021"][:N_HELDOUT]
    refs = reference_scores(trained, photos, labels, view_photos, heldout)
    refs["note"] = ("PyTorch fp32 scores of the trained model on real photos; 'samples' are in samples/, "
                    "'skin-cc0' (and its distorted views) in ../shared/data/skin-cc0/images, 'biq2021-heldout' "
                    "(never trained on) in ../shared/data/biq2021/Images")
    atomic_write_text(MODELS_DIR / "reference_scores.json", json.dumps(refs, indent=1) + "\n")
    card = dict(trained.card)
    card.pop("history", None)
    card["shipped_file"] = f"{DEFAULT}.tflite ({precision}, exported from {src.name})"
    shipped = shipped_metrics(MODELS_DIR / f"{DEFAULT}.tflite", trained)
    card["shipped_test_metrics"] = shipped
    atomic_write_text(MODELS_DIR / f"{DEFAULT}.card.json", json.dumps(card, indent=1, default=str) + "\n")
    md = (trained.run_dir / "card.md").read_text() if trained.run_dir else ""
    atomic_write_text(MODELS_DIR / f"{DEFAULT}.card.md", md + shipped_markdown(shipped, precision))
    return MODELS_DIR / f"{DEFAULT}.tflite"


def add_arguments(parser) -> None:
    parser.add_argument("--export-dir", type=Path, required=True, help="the folder `diqa-edge export` wrote")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the run the export came from")
    parser.add_argument("--precision", default="int8", help="which of the exported TFLite files ships")
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--skin", type=Path, default=data_root() / "skin-cc0" / "images",
                        help="the CC0 skin photos whose reference scores are recorded (default: under "
                             "$DIQA_EDGE_DATA, else ../shared/data)")


def run(args) -> int:
    from ..models.load import load_trained

    out = bundle(args.export_dir, load_trained(args.checkpoint), args.samples, args.skin, precision=args.precision)
    print(f"bundled {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    from ..commands import run_module

    raise SystemExit(run_module("python -m diqa_edge.export.bundle (diqa-edge bundle)", add_arguments, run,
                                "Make an exported model the package's default (maintainers)."))
