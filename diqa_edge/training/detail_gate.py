"""Thresholds for the look at 1:1 (``diqa_edge.sdk.detail``), chosen on calibration photos of both skin domains.

The tiles: the native-resolution centre tile of every calibration photo, as taken and with
each of KADID's blur and noise families built on it at levels 1-5 **with KADID's pixel parameters
unscaled** (dermoscopy photos of the training and validation parts, phone photos of those parts' patients;
never the test parts: no model output is involved, so the training part may calibrate too). KADID-10k's raters saw 512 x 384 images at 1:1, so a tile distorted so carries their rating
(``kadid.kadid_label``) exactly as the dermatologist zooming into the photo would see it.

The rule: a tile should be sent back when its label is below the manifest's score threshold. For each
measure (noise on the noise views, sharpness on the blur views), the threshold minimises the balanced
error (views that should go back kept + views that should stay sent back, each as a share of its
kind), on the condition that at most ``MAX_PRISTINE_RETAKE`` of the as-taken tiles are sent back: the
model's rule has already spent the false-retake budget, so the 1:1 look may add little to it.

    diqa-edge detail-rule --card diqa_edge/models/run/card.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..cachedir import data_root
from ..contract import DEFAULT_CONTRACT
from ..errors import ImageDecodeError
from ..sdk.decode import decode_image
from ..sdk.detail import DetailRule, DetailStats, centre_box, measure_detail

NOISE_FAMILIES = ("noise",)
BLUR_FAMILIES = ("gaussian_blur", "lens_blur", "motion_blur")
LEVELS = (1, 2, 3, 4, 5)
MARGIN = 48                 # pixels around the tile the filters read (KADID's widest blur at level 5: 5 px sigma)
MAX_PRISTINE_RETAKE = 0.01
SEED_OFFSET = 500           # distortion seeds past the skin sets' own view seeds


@dataclass(frozen=True)
class TileView:
    photo: str
    family: str | None
    level: int | None
    label: float
    stats: DetailStats


def tile_with_margin(rgb: np.ndarray, side: int) -> tuple[np.ndarray, tuple[int, int]] | None:
    """The centre tile's region plus ``MARGIN`` on each side (less at the border), and where the tile is
    inside it: a filter built on this region equals the same filter on the whole photo, cropped."""
    box = centre_box(*rgb.shape[:2], side)
    if box is None:
        return None
    top, left = box
    a, b = max(0, top - MARGIN), max(0, left - MARGIN)
    return rgb[a:top + side + MARGIN, b:left + side + MARGIN], (top - a, left - b)


def tile_views(path: Path, side: int, seed: int = 0) -> list[TileView]:
    """The as-taken tile of one photo and its blur / noise views at 1:1 (empty when the photo is smaller
    than the tile or cannot be decoded)."""
    from ..data.kadid import KADID_SHORT_SIDE, distort_kadid, kadid_label
    from ..data.skinviews import view_seed

    try:
        rgb = decode_image(path, DEFAULT_CONTRACT)
    except ImageDecodeError:
        return []
    region = tile_with_margin(rgb, side)
    if region is None:
        return []
    crop, (top, left) = region
    cut = lambda x: x[top:top + side, left:left + side]  # noqa: E731
    views = [TileView(path.name, None, None, kadid_label(None, None), measure_detail(cut(crop)))]
    for i, family in enumerate(NOISE_FAMILIES + BLUR_FAMILIES):
        for level in LEVELS:
            s = view_seed(seed, path.stem, SEED_OFFSET + 10 * i + level)
            faulty = distort_kadid(crop, family, level, short_side=KADID_SHORT_SIDE, seed=s)
            views.append(TileView(path.name, family, level, kadid_label(family, level), measure_detail(cut(faulty))))
    return views


def _tiles_of(args) -> list[TileView]:
    return tile_views(*args)


def all_tile_views(photos: list[Path], side: int, seed: int = 0, workers: int = 2,
                   progress: bool = True) -> list[TileView]:
    from multiprocessing import get_context

    from tqdm import tqdm

    jobs = [(p, side, seed) for p in photos]
    with get_context("spawn").Pool(workers) as pool:
        done = list(tqdm(pool.imap(_tiles_of, jobs, chunksize=4), total=len(jobs), disable=not progress,
                         desc="1:1 tiles", unit="photo"))
    return [v for views in done for v in views]


def _threshold(values: np.ndarray, want: np.ndarray, pristine: np.ndarray, above: bool) -> float:
    """The cut (retake when value > cut if ``above``, else value < cut) of least balanced error with at
    most ``MAX_PRISTINE_RETAKE`` of the pristine tiles sent back; midway between neighbouring values."""
    v = np.sort(np.unique(values))
    cuts = np.r_[v[0] - 1e-6, (v[:-1] + v[1:]) / 2, v[-1] + 1e-6]
    best, best_err = None, np.inf
    for cut in cuts:
        retake = values > cut if above else values < cut
        if retake[pristine].mean() > MAX_PRISTINE_RETAKE:
            continue
        err = (1 - retake[want].mean() if want.any() else 0) + (retake[~want].mean() if (~want).any() else 0)
        if err < best_err - 1e-12:
            best, best_err = float(cut), err
    return best


def _within(cut: float, key: str) -> float:
    """A cut the SDK's manifest check accepts (``DETAIL_BOUNDS``): one past them would send back every
    photo or none, so the nearest bound says the same."""
    from ..sdk.manifest import DETAIL_BOUNDS

    low, high = DETAIL_BOUNDS[key]
    return float(min(max(cut, low), high))


def choose_detail_rule(views: list[TileView], score_threshold: float,
                       tile: int = DEFAULT_CONTRACT.detail_tile) -> tuple[DetailRule, dict]:
    """(the rule's 1:1 part, its evidence): the two thresholds on ``tile``; how they were chosen and the
    share of tiles each (family, level) sends back on the calibration photos."""
    def pick(families, measure, above):
        chosen = [v for v in views if v.family is None or v.family in families]
        chosen = [v for v in chosen if getattr(v.stats, measure) is not None]
        values = np.array([getattr(v.stats, measure) for v in chosen])
        want = np.array([v.label < score_threshold for v in chosen])
        pristine = np.array([v.family is None for v in chosen])
        return _threshold(values, want, pristine, above)

    rule = DetailRule(noise_max=_within(pick(NOISE_FAMILIES, "noise", True), "noise_max"),
                      sharpness_min=_within(pick(BLUR_FAMILIES, "sharpness", False), "sharpness_min"), tile=tile)
    return rule, {
            "chosen_on": (f"native-resolution centre tiles of {len({v.photo for v in views})} calibration skin "
                          "photos (training and validation parts of both skin sets, never the test parts), as taken and with KADID's blur and "
                          "noise at 1:1 (training/detail_gate.py)"),
            "table": retake_table(views, rule)}


def retake_table(views: list[TileView], rule: DetailRule) -> list[dict]:
    rows = {}
    for v in views:
        key = (v.family or "as taken", v.level or 0)
        rows.setdefault(key, []).append(rule.trigger(v.stats) is not None)
    return [{"family": f, "level": lv or None, "n": len(r), "retake": round(float(np.mean(r)), 4)}
            for (f, lv), r in sorted(rows.items(), key=lambda kv: (kv[0][0] != "as taken", kv[0]))]


def part_photos(card: dict, set_name: str, part: str, originals: Path) -> list[Path]:
    """The original photos behind the as-taken views of one part of a run's skin set (its own split,
    ``run_split_part``; the view names by ``dermset.view_stem``)."""
    from ..data.dermset import view_stem
    from ..data.splits import run_split_part

    if not originals.is_dir():
        return []
    by_view = {view_stem(p.stem, None, None): p for p in originals.iterdir()}
    one_set = {**card, "dataset_dirs": {set_name: card["dataset_dirs"][set_name]}}
    return sorted(by_view[r.image.stem] for r in run_split_part(one_set, part) if r.image.stem in by_view)


ORIGINALS = {"derm": ("skin-cc0", "images"), "phone": ("pad-ufes-phone", "images")}


def calibration_photos(card: dict, parts: tuple[str, ...] = ("train", "val")) -> list[Path]:
    """The training and validation parts' photos: the 1:1 thresholds use no model output, so every photo
    outside the test parts may calibrate them."""
    return [p for name, (folder, sub) in ORIGINALS.items() if name in card.get("dataset_dirs", {})
            for part in parts for p in part_photos(card, name, part, data_root() / folder / sub)]


def detail_rule(card: dict, score_threshold: float, workers: int = 2,
                progress: bool = True) -> tuple[DetailRule, dict] | None:
    """(the 1:1 part of a run's rule, its evidence), chosen on the run's split and skin data folders, or
    None when none of its skin sets' original photos are on this machine."""
    photos = calibration_photos(card)
    if not photos:
        return None
    side = card["contract"].get("detail_tile", DEFAULT_CONTRACT.detail_tile)
    views = all_tile_views(photos, side, workers=workers, progress=progress)
    return choose_detail_rule(views, score_threshold, side)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--card", type=Path, required=True, help="the run's card.json (its rule gains 'detail')")
    parser.add_argument("--workers", type=int, default=2, help="processes measuring the tiles")


def run(args: argparse.Namespace) -> int:
    from ..errors import DiqaError
    from ..fileio import atomic_write_text
    from ..models.load import card_rule, read_card

    card = read_card(args.card)
    rule, evidence = card_rule(card, str(args.card))
    if rule is None:
        raise DiqaError(f"{args.card}: the run chose no retake rule (it trained no skin gate)")
    found = detail_rule(card, rule.score_threshold, args.workers)
    if found is None:
        raise DiqaError(f"none of the run's skin photos are under {data_root()} (skin-cc0/images, "
                        "pad-ufes-phone/images)")
    card.pop("decision", None)      # an older card's form: written again as rule + evidence
    card["rule"] = replace(rule, detail=found[0]).to_dict()
    card["rule_evidence"] = {**evidence, "detail": found[1]}
    atomic_write_text(args.card, json.dumps(card, indent=1) + "\n")
    markdown = Path(args.card).with_name("card.md")
    if markdown.exists():       # the card a reader opens says what the rule now is
        from .feature_card import card_markdown

        atomic_write_text(markdown, card_markdown(card))
    print(json.dumps(found[0].to_dict(), indent=1))
    for row in found[1]["table"]:
        print(f"{row['family']:14} {row['level'] or '':2} n={row['n']:4}  sent back {row['retake']:.3f}")
    return 0


if __name__ == "__main__":
    from ..commands import run_module

    raise SystemExit(run_module("python -m diqa_edge.training.detail_gate (diqa-edge detail-rule)", add_arguments,
                                run, "Choose the 1:1 thresholds (noise, sharpness of the native-resolution centre "
                                     "tile) on the calibration photos of a run's skin sets and write them into its "
                                     "card's rule."))
