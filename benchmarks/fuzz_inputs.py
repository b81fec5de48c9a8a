"""The fuzz loops of ``tests/sdk/test_fuzz.py``, run longer: damaged photos (JPEG, PNG, HEIC, WebP) through
``QualityScorer.score``, damaged ``.tflite`` files and manifests through ``QualityScorer(...)``, damaged
files in a folder through ``diqa-edge score --json``, and hypothesis' arrays and Pillow modes. Reports
how many inputs were tried, scored and refused with a typed error, every other outcome (a failure),
and the peak memory of the processes.

    python benchmarks/fuzz_inputs.py --images 3000 --models 200 --cli 600 --examples 1500 \
        --out benchmarks/results/fuzz_inputs.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def hypothesis_examples(scorer, examples: int) -> dict:
    """The test's two properties with ``examples`` examples each; hypothesis raises the shrunk failing
    example, which is recorded."""
    from diqa_edge.bench_fuzz import property_runs

    out = {}
    for name, run in property_runs(scorer, examples).items():
        try:
            run()
            out[name] = {"examples": examples, "failures": []}
        except Exception as exc:  # noqa: BLE001 - the failing example, reported
            out[name] = {"examples": examples, "failures": [f"{type(exc).__name__}: {exc}"[:500]]}
    return out


def main(argv: list[str] | None = None) -> int:
    from diqa_edge.bench_fuzz import fuzz_cli, fuzz_images, fuzz_model_files, seed_files

    from diqa_edge.bench_fuzz import FIXTURE_MODELS

    from diqa_edge.sdk import QualityScorer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=3000, help="damaged photos scored in memory")
    parser.add_argument("--models", type=int, default=200, help="damaged .tflite files / manifests loaded")
    parser.add_argument("--cli", type=int, default=600, help="damaged files in one `diqa-edge score` batch")
    parser.add_argument("--examples", type=int, default=1500, help="hypothesis examples per property")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fuzz_inputs.json")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="diqa-fuzz-"))
    blobs = seed_files(work)
    scorer = QualityScorer(FIXTURE_MODELS / "brightness.onnx", threads=1)
    report = {}
    for name, tally in (("photos in memory", fuzz_images(scorer, blobs, args.images, args.seed)),
                        ("model files and manifests", fuzz_model_files(blobs, work / "models", args.models,
                                                                       args.seed))):
        report[name] = vars(tally)
    cli, peak_kb = fuzz_cli(blobs, work / "batch", args.cli, args.seed)
    report["files through diqa-edge score"] = {**vars(cli), "peak_rss_mb": round(peak_kb / 1024)}
    report["hypothesis"] = hypothesis_examples(scorer, args.examples)
    report["peak_rss_mb_this_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report["seconds"] = round(time.perf_counter() - t0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    failures = sum(len(v["failures"]) for k, v in report.items() if isinstance(v, dict) and "failures" in v)
    failures += sum(len(v["failures"]) for v in report["hypothesis"].values())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
