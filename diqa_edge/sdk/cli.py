"""``diqa-edge score``: score photos from the command line the way the app would."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from ..errors import DiqaError, ImageDecodeError, UsageError
from .hints import GENERIC, HINTS, INPUT_HINTS
from .runtimes import MAX_THREADS
from .scorer import QualityScorer, bundled_model

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".apng", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".heic",
                  ".heif", ".avif"}   # .jfif: what a browser on Windows names a saved JPEG
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PHOTO_FAILED = 0, 1, 2, 3
HOW_IT_DECIDES = ("How a photo is judged: the model sees it shrunk to its input size and gives a 1-10 score and "
                  "one probability per fault; the photo is sent back when the score is below the threshold, when "
                  "a fault passes its own threshold, or (models whose manifest looks at 1:1) when the photo's own "
                  "pixels at its centre are noisier or softer than the manifest allows (the hint then says \"at "
                  "1:1\"). The header line prints every threshold the model uses.")
EXIT_CODES = (f"Exit codes: {EXIT_OK} every file scored; {EXIT_FAILED} the model could not be loaded; "
              f"{EXIT_USAGE} a usage error (a bad option); {EXIT_PHOTO_FAILED} a file could not be scored "
              "(its reason is on stderr and, with --json, in a record with \"error\")")
def collect_images(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]], list[tuple[Path, str]]]:
    """(files to score, (path, reason) for what cannot be scored, (path, reason) for what is skipped).

    Files named on the command line are taken whatever their suffix, and missing or broken ones too:
    the decoder judges them and names the fault (``decode._open``). In folders, entries with an image
    suffix, and broken links or link loops whatever their name, are taken; every other entry is reported
    as skipped, so nothing goes unmentioned; links to folders are not followed (they may loop back)."""
    files: list[Path] = []
    failures: list[tuple[str, str]] = []
    skipped: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            files.append(path)
            continue
        for entry in _walk(path, failures, skipped):
            if entry.suffix.lower() in IMAGE_SUFFIXES or not entry.exists():   # a broken link fails, named
                files.append(entry)
            else:
                skipped.append((entry, "not an image by name"))
    return files, failures, skipped


def _walk(folder: Path, failures: list[tuple[str, str]], skipped: list[tuple[Path, str]]) -> list[Path]:
    """Every entry under ``folder`` that is not a folder (broken links and link loops included), sorted;
    unreadable folders go to ``failures``, links to folders to ``skipped``."""
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        failures.append((str(exc.filename or folder), f"cannot read the folder ({exc.strerror or exc})"))

    stack = [str(folder)]
    while stack:   # a stack, not os.walk: Python 3.11's os.walk recurses and a tree 1,100 deep overflowed it
        root = stack.pop()
        try:
            with os.scandir(root) as it:
                entries = list(it)
        except OSError as exc:
            unreadable(exc)
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir()          # follows links: a link to a folder is reported, not walked
            except OSError:
                is_dir = False
            if is_dir and entry.is_symlink():
                skipped.append((Path(entry.path), "a link to a folder, not followed (name the folder itself)"))
            elif is_dir:
                stack.append(entry.path)
            else:
                found.append(Path(entry.path))
    return sorted(found)


def _threshold(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_THREADS}, got {value}")
    return value


def _hint_text(result) -> str:
    """"blurred (p 0.93): Hold the phone still ..." for the table; "" when there is nothing to say."""
    if not result.hint:
        return ""
    if result.top_reason in INPUT_HINTS:
        return f"{INPUT_HINTS[result.top_reason].label}: {result.hint}"
    if result.detail and result.detail.get("sent_back"):
        measure = "noise" if result.detail["sent_back"] == "noise" else "sharpness"
        return (f"{HINTS.get(result.top_reason, GENERIC).label} at 1:1 ({measure} {result.detail[measure]:.2f}): "
                f"{result.hint}")
    if result.top_reason:
        return f"{HINTS.get(result.top_reason, GENERIC).label} (p {result.reasons[result.top_reason]:.2f}): {result.hint}"
    return result.hint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = HOW_IT_DECIDES + " " + EXIT_CODES
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files and/or folders (searched recursively for "
                             + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    parser.add_argument("--model", "-m", type=Path, default=None,
                        help="a .tflite, .onnx, .pt (TorchScript) or .mlpackage model with its "
                             "manifest (default: the model bundled with the package)")
    parser.add_argument("--threshold", "-t", type=_threshold, default=None,
                        help="the score a photo needs, within the model's score range (1-10) (default: the "
                             "threshold stored in the model's manifest); a reason past its own threshold in "
                             "the manifest still sends it back")
    parser.add_argument("--threads", type=_threads, default=2, help="inference threads, >= 1 (default: 2)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per file instead of a table; a file that could not be "
                             "scored gets {\"source\": ..., \"error\": ...}")


def stdout_usable() -> bool:
    """False when standard output is closed (``>&-``): Python then drops every print without a word, and a
    batch would exit 0 with its results lost."""
    if sys.stdout is None:
        return False
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):   # an in-memory stream (a caller capturing the output)
        return True
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    if not stdout_usable():
        print("diqa-edge score: standard output is closed, so the results would be lost; "
              "redirect it to a file instead (> results.txt)", file=sys.stderr)
        return EXIT_FAILED
    model = args.model or bundled_model()
    if model is None:
        print("diqa-edge score: no model given and this install bundles none; "
              "pass --model PATH to a .tflite/.onnx file with its .manifest.json", file=sys.stderr)
        return EXIT_FAILED
    try:
        scorer = QualityScorer(model, threads=args.threads, threshold=args.threshold)
    except UsageError as exc:
        print(f"diqa-edge score: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DiqaError as exc:
        print(f"diqa-edge score: cannot load the model: {exc}", file=sys.stderr)
        return EXIT_FAILED

    files, failures, skipped = collect_images(args.paths)
    for raw, reason in failures:
        _report_failure(raw, reason, args.json)
    if skipped:
        print(f"skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} in the folders given: "
              + "; ".join(f"{shown(p)} ({why})" for p, why in skipped[:20])
              + (f"; and {len(skipped) - 20} more" if len(skipped) > 20 else ""),
              file=sys.stderr)
    if not files and not failures:
        print("diqa-edge score: no image files found in " + ", ".join(args.paths), file=sys.stderr)
        return EXIT_PHOTO_FAILED
    width = max([len(shown(f)) for f in files] + [4])
    if not args.json:
        _print_header(scorer, model, args.threads, width)
    results = _score_files(scorer, files, failures, args.json, width)
    if not args.json:
        accepted = sum(r.acceptable for r in results)
        print(f"{len(results)} scored ({accepted} accept, {len(results) - accepted} retake), "
              f"{len(failures)} failed" + (f", {len(skipped)} skipped (see stderr)" if skipped else ""))
    return EXIT_PHOTO_FAILED if failures else EXIT_OK


def shown(name) -> str:
    """A file name as it can be printed anywhere: bytes that are not UTF-8 (a name from another system) as
    \\x escapes, newlines and terminal escapes as \\n, \\x1b: a name never breaks the table, the terminal
    or the batch (a non-UTF-8 name raised UnicodeEncodeError and the rest went unscored)."""
    text = str(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _print_header(scorer: QualityScorer, model, threads: int, width: int) -> None:
    """The model and its rule, then the table's header: a reader sees why a photo was sent back."""
    rule = ("; retake also when a reason passes its threshold: " + ", ".join(
        f"{r} {t:.2f}" for r, t in scorer.rule.reason_thresholds.items())) if scorer.rule.reason_thresholds else ""
    detail = scorer.rule.detail
    if detail is not None and scorer.contract.detail_tile:
        rule += f"; at 1:1 (centre {scorer.contract.detail_tile} px) when {detail.describe()}"
    print(f"model: {model} (score threshold {scorer.threshold:.2f}{rule}; {scorer.runtime.name}, "
          f"{threads} threads)")
    reasons_note = "" if scorer.manifest.reasons else " (this model has no reasons head: no hints)"
    print(f"{'file':<{width}}  {'score':>5}  {'decision':<8}  {'ms':>7}  hint{reasons_note}")


def _score_files(scorer: QualityScorer, files: list[Path], failures: list, as_json: bool, width: int) -> list:
    """Each file scored and printed as it comes (a table row or a JSON line); a file that cannot be scored
    is reported and added to ``failures``, and the others go on."""
    from tqdm import tqdm

    results = []
    for path in tqdm(files, desc="scoring", unit="img", disable=None, file=sys.stderr, leave=False):
        try:
            result = scorer.score(path)
        except DiqaError as exc:
            reason = exc.reason if isinstance(exc, ImageDecodeError) else str(exc)
            failures.append((str(path), reason))
            _report_failure(str(path), reason, as_json)
            continue
        results.append(result)
        if as_json:
            print(json.dumps({**result.to_dict(), "source": shown(path)}), flush=True)
        else:
            decision = "accept" if result.acceptable else "retake"
            print(f"{shown(path):<{width}}  {result.score:5.2f}  {decision:<8}  {result.total_ms:7.1f}  "
                  f"{_hint_text(result)}".rstrip(), flush=True)
    return results


def _report_failure(source: str, reason: str, as_json: bool) -> None:
    """One line on stderr always; with --json also a record, so a batch consumer can tell
    "not scored" from "absent"."""
    print(f"error: {shown(source)}: {reason}", file=sys.stderr)
    if as_json:
        print(json.dumps({"source": shown(source), "error": reason, "decision": None}), flush=True)
