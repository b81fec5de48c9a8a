"""Test vectors beside each artefact, so a mobile app's own unit tests can check themselves against us.

For each of five shippable photos: the exact input tensor's SHA-256 (float32
bytes in the artefact's layout; for Core ML the uint8 RGB crop it takes), a
few of its values, the expected scores (the artefact's and PyTorch's), and
the 1:1 tile's SHA-256 and measures (``diqa_edge.sdk.detail``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from ..sdk.decode import decode_image
from ..sdk.detail import SHARPNESS_MEASURE, centre_tile, measure_detail
from ..fileio import atomic_write_text
from ..sdk.preprocess import preprocess_rgb, resize_and_crop


def tensor_record(rgb: np.ndarray, contract, layout: str) -> dict:
    if layout == "image":
        crop = np.ascontiguousarray(resize_and_crop(rgb, contract))
        return {"layout": "HWC uint8 RGB crop", "shape": list(crop.shape), "dtype": "uint8",
                "sha256": hashlib.sha256(crop.tobytes()).hexdigest(),
                "first_values": crop.reshape(-1)[:8].tolist()}
    x = preprocess_rgb(rgb, contract, layout=layout)
    return {"layout": layout, "shape": list(x.shape), "dtype": "float32",
            "sha256": hashlib.sha256(np.ascontiguousarray(x, dtype="<f4").tobytes()).hexdigest(),
            "first_values": [round(float(v), 6) for v in x.reshape(-1)[:8]], "mean": round(float(x.mean()), 6)}


def detail_record(rgb: np.ndarray, contract, sharpness_measure: str = SHARPNESS_MEASURE) -> dict | None:
    """The 1:1 look's tile (uint8 RGB bytes, its SHA-256) and its measures, unrounded past 1e-9."""
    tile = centre_tile(rgb, contract.detail_tile)
    if tile is None:
        return None
    stats = measure_detail(tile, sharpness_measure)
    return {"tile": contract.detail_tile, "sha256": hashlib.sha256(np.ascontiguousarray(tile).tobytes()).hexdigest(),
            "noise": round(stats.noise, 9), "sharpness": None if stats.sharpness is None else round(stats.sharpness, 9),
            "sharpness_measure": sharpness_measure}


def manifest_sharpness_measure(artefact_path: Path) -> str:
    """The sharpness measure the manifest beside an exported file holds its 1:1 look to (the current one
    when it has no 1:1 rule: the vectors then record what a newer rule would read)."""
    from ..sdk.detail import DetailRule

    manifest = artefact_path.with_suffix(".manifest.json")
    if not manifest.exists():
        return SHARPNESS_MEASURE
    detail = DetailRule.from_dict((json.loads(manifest.read_text()).get("rule") or {}).get("detail"))
    return SHARPNESS_MEASURE if detail is None else detail.sharpness_measure


def write_vectors(artefact_path: Path, layout: str, photos: list[Path], contract, expected: list[float] | None,
                  torch_expected: list[float], out_dir: Path) -> Path:
    image_dir = out_dir / "vectors"
    image_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    measure = manifest_sharpness_measure(artefact_path)
    for i, photo in enumerate(photos):
        target = image_dir / photo.name
        if not target.exists():
            shutil.copy(photo, target)
        rgb = decode_image(photo, contract)
        entries.append({"image": f"vectors/{photo.name}", "input": tensor_record(rgb, contract, layout),
                        "detail": detail_record(rgb, contract, measure),
                        "expected_score": None if expected is None else round(expected[i], 5),
                        "pytorch_score": round(torch_expected[i], 5)})
    doc = {"model": artefact_path.name, "contract": contract.to_dict(),
           "tolerance_note": "an app matches when its input SHA-256 is equal (same preprocessing) and its "
                             "score is within 0.01 of expected_score; its 1:1 look when the tile's SHA-256 is equal and noise "
                             "and sharpness are within 1e-6",
           "vectors": entries}
    out = artefact_path.with_suffix(".vectors.json")
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    return out
