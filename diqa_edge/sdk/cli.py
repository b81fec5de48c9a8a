"""``diqa-edge score``: score photos from the command line the way the app would."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import DiqaError
from .hints import GENERIC, HINTS
from .scorer import QualityScorer

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"


def bundled_model() -> Path | None:
    """The default model shipped inside the package, if this build carries one."""
    for name in ("default.tflite", "default.onnx"):
        candidate = BUNDLED_MODEL_DIR / name
        if candidate.exists():
            return candidate
    return None


def collect_images(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files as given (any suffix: the decoder judges them) plus image files found under folders."""
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            missing.append((raw, "file not found"))
    return files, missing


def _hint_text(result) -> str:
    """"blurred (p 0.93): Hold the phone still ..." for the table; "" when there is nothing to say."""
    if not result.hint:
        return ""
    if result.top_reason:
        return f"{HINTS.get(result.top_reason, GENERIC).label} (p {result.reasons[result.top_reason]:.2f}): {result.hint}"
    return result.hint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files and/or folders (searched recursively for "
                             + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    parser.add_argument("--model", "-m", type=Path, default=None,
                        help="a .tflite, .onnx, .pt (TorchScript) or .mlpackage model with its "
                             "manifest (default: the model bundled with the package)")
    parser.add_argument("--threshold", "-t", type=float, default=None,
                        help="the score a photo needs (default: the threshold stored in the model's "
                             "manifest); a reason past its own threshold in the manifest still sends it back")
    parser.add_argument("--threads", type=int, default=2, help="inference threads (default: 2)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per file instead of a table")


def run(args: argparse.Namespace) -> int:
    model = args.model or bundled_model()
    if model is None:
        print("diqa-edge score: no model given and this install bundles none; "
              "pass --model PATH to a .tflite/.onnx file with its .manifest.json", file=sys.stderr)
        return 1
    try:
        scorer = QualityScorer(model, threads=args.threads, threshold=args.threshold)
    except DiqaError as exc:
        print(f"diqa-edge score: cannot load the model: {exc}", file=sys.stderr)
        return 1

    files, failures = collect_images(args.paths)
    for raw, reason in failures:
        print(f"error: {raw}: {reason}", file=sys.stderr)
    if not files and not failures:
        print("diqa-edge score: no image files found in " + ", ".join(args.paths), file=sys.stderr)
        return 2

    from tqdm import tqdm

    results = []
    width = max([len(str(f)) for f in files] + [4])
    if not args.json:
        rule = ("; retake also when a reason passes its threshold: " + ", ".join(
            f"{r} {t:.2f}" for r, t in scorer.rule.reason_thresholds.items())) if scorer.rule.reason_thresholds else ""
        print(f"model: {model} (score threshold {scorer.threshold:.2f}{rule}; {scorer.runtime.name}, "
              f"{args.threads} threads)")
        reasons_note = "" if scorer.manifest.reasons else " (this model has no reasons head: no hints)"
        print(f"{'file':<{width}}  {'score':>5}  {'decision':<8}  {'ms':>7}  hint{reasons_note}")
    for path in tqdm(files, desc="scoring", unit="img", disable=None, file=sys.stderr, leave=False):
        try:
            result = scorer.score(path)
        except DiqaError as exc:
            failures.append((str(path), str(exc)))
            print(f"error: {exc}", file=sys.stderr)
            continue
        results.append(result)
        if args.json:
            print(json.dumps(result.to_dict()), flush=True)
        else:
            decision = "accept" if result.acceptable else "retake"
            print(f"{str(path):<{width}}  {result.score:5.2f}  {decision:<8}  {result.total_ms:7.1f}  "
                  f"{_hint_text(result)}".rstrip(), flush=True)
    if not args.json:
        accepted = sum(r.acceptable for r in results)
        print(f"{len(results)} scored ({accepted} accept, {len(results) - accepted} retake), "
              f"{len(failures)} failed")
    return 2 if failures else 0
