"""The gate on real phone photos of patients no model trained on: accepted as taken, and every fault built on
them sent back, with the hint that says why.

The photos: PAD-UFES-20 smartphone photos (``../shared/data/pad-ufes-phone``, 300 px) of the patients in the
test part of the phone set's grouped split (``diqa-edge make-skin-set ... --phone``; split 0, seed 0, as
training uses). Each fault family (KADID's nine, the camera's eight: the seven the recipe builds and the
colour cast it does not, the three no-detail frames) is built on every one of those photos at the levels
asked (default 4 and 5: what a dermatologist sends back), with seeds that training never drew, and scored
by each model file through ``QualityScorer`` (the rule its own manifest stores, exactly as ``diqa-edge
score``). "Right hint": the share of the views sent back whose hint is the one
of the family's reason, or for a combination (low light, shake with noise) of one of its parts' reasons (the
patient is told a fix that helps).

    python benchmarks/phone_gate.py --model shipped=diqa_edge/models/default.tflite \
        --model previous=~/.cache/diqa-edge/previous/shipped-7f.tflite --out benchmarks/results/phone_gate.json \
        --contact-sheet docs/phone_sent_back.png
    python benchmarks/phone_gate.py --model shipped=diqa_edge/models/default.tflite \
        --dermoscopy-set ~/.cache/diqa-edge/skin-kadid-512 --out benchmarks/results/dermoscopy_every_fault.json

With ``--dermoscopy-set`` the same faults are built on the dermoscopy test photos (the set's pristine 512-px
views): every fault on every photo, where the set's own test views (``skin_gate.py``) sample about ten
camera faults a photo, so a camera family's cell there holds 11-21 views.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

LEVELS = (4, 5)


def right_reasons(family: str) -> set[str]:
    """The reasons whose hint helps with ``family``: its own, and for a combination its parts' too."""
    from diqa_edge.data.camera import CAMERA_FAMILIES, combined
    from diqa_edge.data.kadid import reason_of

    found = {reason_of(family)}
    fam = CAMERA_FAMILIES.get(family)
    if fam is not None and fam.fn is combined:
        found |= {reason_of(part) for parts in fam.params for part, level in parts if level}
    return found


def answers(scorer, images) -> list[tuple[bool, str | None]]:
    """(acceptable, the short label of the hint the patient is shown, or None) of each image."""
    from diqa_edge.sdk.hints import GENERIC, HINTS, INPUT_HINTS

    labels = {h.hint: h.label for h in (*HINTS.values(), *INPUT_HINTS.values(), GENERIC)}
    out = []
    for image in images:
        res = scorer.score(image)
        out.append((bool(res.acceptable), labels.get(res.hint, res.hint) if res.hint else None))
    return out


def measure(model: Path, good: list[Path], bad: list[Path], faults, threads: int = 2) -> dict:
    from collections import Counter

    from diqa_edge.bench_phone import fault_view
    from diqa_edge.sdk import QualityScorer
    from diqa_edge.sdk.decode import decode_image
    from diqa_edge.sdk.hints import HINTS

    scorer = QualityScorer(model, threads=threads)
    taken = answers(scorer, good)
    sent_back_as_taken = [{"photo": p.name, "hint": h} for p, (ok, h) in zip(good, taken) if not ok]
    reviewed = answers(scorer, bad)
    photos = [(p, decode_image(p, scorer.contract)) for p in good]
    families: dict = {}
    for family, level in tqdm(faults, desc=model.name, unit="fault", mininterval=10):
        views = [fault_view(p, rgb, family, level) for p, rgb in photos]
        got = answers(scorer, views)
        sent = [h for ok, h in got if not ok]
        right = {HINTS[r].label for r in right_reasons(family) if r in HINTS}
        families.setdefault(family, {})[str(level)] = {
            "retake": round(len(sent) / len(got), 4), "n": len(got),
            "right_hint": round(sum(h in right for h in sent) / len(sent), 4) if sent else None,
            "hints": dict(Counter(sent).most_common())}
    return {"as_taken_accept": round(float(np.mean([ok for ok, _ in taken])), 4), "n_as_taken": len(taken),
            "as_taken_hints": sorted({h for ok, h in taken if not ok and h}),
            "as_taken_sent_back": sent_back_as_taken,
            "reviewed_retake": round(float(np.mean([not ok for ok, _ in reviewed])), 4) if reviewed else None,
            "n_reviewed": len(reviewed), "families": families}


def _interval(rate: float, n: int) -> str:
    """The 95 % Wilson interval of a share measured on ``n`` views, as "0.48-0.66"."""
    from diqa_edge.eval.gate import wilson

    low, high = wilson(round(rate * n), n)
    return f"{low:.2f}-{high:.2f}"


def markdown(results: dict) -> str:
    names = list(results)
    levels = sorted({lv for r in results.values() for f in r["families"].values() for lv in f})
    head = "| fault | " + " | ".join(f"{n}: sent back at level {' / '.join(levels)} [95 % interval] (right hint)"
                                     for n in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]
    for fam in results[names[0]]["families"]:
        cells = []
        for n in names:
            row = results[n]["families"][fam]
            cells.append(" / ".join(f"{row[lv]['retake']:.2f} [{_interval(row[lv]['retake'], row[lv]['n'])}]"
                                    + (f" ({row[lv]['right_hint']:.2f})" if row[lv]["right_hint"] is not None else "")
                                    if lv in row else "–" for lv in levels))
        lines.append(f"| {fam} | " + " | ".join(cells) + " |")
    lines.append("| **as taken, accepted** | " + " | ".join(
        f"**{results[n]['as_taken_accept']:.3f}** [{_interval(results[n]['as_taken_accept'], results[n]['n_as_taken'])}]"
        f" of {results[n]['n_as_taken']}" for n in names) + " |")
    lines.append("| as taken, accepted, the reviewed photos counted in | " + " | ".join(
        f"{_with_reviewed(results[n]):.3f} of {results[n]['n_as_taken'] + results[n]['n_reviewed']}" for n in names) + " |")
    lines.append("| reviewed 'retake' photos sent back | " + " | ".join(
        f"{results[n]['reviewed_retake']:.2f} of {results[n]['n_reviewed']}" if results[n]["n_reviewed"] else "–"
        for n in names) + " |")
    return "\n".join(lines) + "\n"


ATTRIBUTION = ("Photos: PAD-UFES-20 (Pacheco et al., Data in Brief 32 (2020) 106221, doi:10.1016/j.dib.2020.106221), "
               "CC BY 4.0, resized to 300 px")


def contact_sheet(rows: list[dict], folder: Path, out: Path, title: str) -> None:
    """The phone test photos a model sends back as taken, each with the hint the patient would read: what a
    reviewer looks at to judge whether the gate was right (PNG, 1:1 pixels, attribution under the grid)."""
    from PIL import Image, ImageDraw

    cols, cell, caption = 4, 300, 34
    n = max(1, len(rows))
    width, height = cols * cell, ((n + cols - 1) // cols) * (cell + caption) + 60
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((8, 8), title, fill="black")
    for i, row in enumerate(rows):
        x, y = (i % cols) * cell, 30 + (i // cols) * (cell + caption)
        photo = Image.open(folder / row["photo"]).convert("RGB")
        photo.thumbnail((cell, cell))
        sheet.paste(photo, (x, y))
        draw.text((x + 4, y + cell + 2), row["photo"], fill="black")
        draw.text((x + 4, y + cell + 16), f"retake: {row['hint'] or 'score'}", fill=(170, 0, 0))
    draw.text((8, height - 24), ATTRIBUTION, fill=(80, 80, 80))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


def _with_reviewed(r: dict) -> float:
    """The share accepted as taken when the reviewer's 'retake' photos are scored as any other (the target
    counts them out; this says what they change)."""
    kept = r["as_taken_accept"] * r["n_as_taken"] + (1 - (r["reviewed_retake"] or 0)) * r["n_reviewed"]
    return kept / (r["n_as_taken"] + r["n_reviewed"])


def dermoscopy_test_photos(skin_set: Path) -> list[Path]:
    """The pristine views (512 px long side, as the set builds every fault on) of a dermoscopy set's test part."""
    from diqa_edge.data.splits import skin_set_parts

    return [Path(r.image) for r in skin_set_parts(skin_set)["test"] if (r.distortion or "none") == "none"]


def add_photo_arguments(parser: argparse.ArgumentParser, models_required: bool = True) -> None:
    """The models and the held-out photos a benchmark on these photos judges (this one, unseen_faults.py and
    cast_vs_tone.py, whose image measure needs no model)."""
    from diqa_edge.cachedir import data_root, phone_set_dir

    parser.add_argument("--model", action="append", required=models_required, default=[],
                        help="NAME=PATH of a model file (repeatable)")
    parser.add_argument("--phone-set", type=Path, default=phone_set_dir(), help="the built phone set (its split)")
    parser.add_argument("--phone-dir", type=Path, default=data_root() / "pad-ufes-phone",
                        help="the phone photos as published (manifest.csv + images/)")
    parser.add_argument("--dermoscopy-set", type=Path, default=None,
                        help="judge the dermoscopy test photos instead (the pristine 512-px views of this built "
                             "dermoscopy set's test part, e.g. ~/.cache/diqa-edge/skin-kadid-512): every fault "
                             "on every photo, where the set's own test views sample ~10 faults a photo")


def chosen_models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Path]:
    """{name: file} of the ``--model NAME=PATH`` options; a path that is not a file is an error, not a crash."""
    models = {name: Path(path).expanduser() for name, _, path in (m.partition("=") for m in args.model)}
    for name, path in models.items():
        if not path.is_file():
            parser.error(f"--model {name}={path}: no such file")
    return models


def chosen_photos(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[list[Path], list[Path]]:
    """(photos that passed review, photos a reviewer sent back) that ``add_photo_arguments`` chose: the
    dermoscopy test photos (none reviewed), or the phone test part's patients' photos."""
    from diqa_edge.bench_phone import test_photos

    if args.dermoscopy_set is not None:
        return dermoscopy_test_photos(args.dermoscopy_set), []
    if not (args.phone_set / "manifest.csv").exists():
        parser.error(f"{args.phone_set}: no phone set; build it with "
                     f"`diqa-edge make-skin-set {args.phone_dir} --phone`")
    return test_photos(args.phone_set, args.phone_dir)


def main(argv=None) -> int:
    from diqa_edge.bench_phone import fault_list

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_photo_arguments(parser)
    parser.add_argument("--levels", default="4,5", help="fault levels to build (default 4,5)")
    parser.add_argument("--out", type=Path, default=None, help="JSON of the results (a .md table beside it)")
    parser.add_argument("--contact-sheet", type=Path, default=None,
                        help="PNG of the test photos the first model sends back as taken, with their hints")
    args = parser.parse_args(argv)
    if args.dermoscopy_set is not None and args.contact_sheet:
        parser.error("--contact-sheet shows phone photos (with their CC BY attribution): not with --dermoscopy-set")
    good, bad = chosen_photos(args, parser)
    faults = fault_list(tuple(int(v) for v in args.levels.split(",")))
    results = {name: measure(path, good, bad, faults) for name, path in chosen_models(args, parser).items()}
    table = markdown(results)
    print(table)
    if args.contact_sheet:
        first = next(iter(results))
        contact_sheet(results[first]["as_taken_sent_back"], args.phone_dir / "images", args.contact_sheet,
                      f"{first}: phone test photos sent back as taken "
                      f"({len(results[first]['as_taken_sent_back'])} of {results[first]['n_as_taken']})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"photos": {"as_taken": len(good), "reviewed_retake": len(bad)},
                                        "levels": args.levels, "results": results}, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
