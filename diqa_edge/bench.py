"""``diqa-edge bench`` / ``benchmarks/bench.py``: size, accuracy, drift and latency of every exported format.

Each format runs in its own process so its peak memory (max RSS) is its own,
on the same machine in one run. Rows: PyTorch fp32 eager (the reference),
then every artefact the export folder holds. Accuracy is against the
held-out labels, per dataset, saying whether they are human MOS or
pseudo-MOS; drift is against PyTorch on the same tensors; latency is the
median and p90 of ``--runs`` timed runs after warm-up, for inference alone and
for the SDK's full path (decode + preprocess + inference) on a real photo.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from .data.records import seeded_subsample
from .data.splits import run_split_part
from .errors import DiqaError
from .eval.report import markdown_table

log = logging.getLogger(__name__)

WORKER = "diqa_edge.bench"


def frame_of(photo: Path, width: int, height: int) -> np.ndarray:
    """The photo filling a landscape camera frame of width x height (scaled to cover, center-cropped): what
    the preview and phone-path benchmarks feed ``score_frame``."""
    from PIL import Image

    img = Image.open(photo).convert("RGB")
    s = max(width / img.width, height / img.height)
    img = img.resize((max(width, round(img.width * s)), max(height, round(img.height * s))), Image.Resampling.BILINEAR)
    left, top = (img.width - width) // 2, (img.height - height) // 2
    return np.asarray(img.crop((left, top, left + width, top + height)))


def _percentiles(times_ms: list[float]) -> dict:
    arr = np.asarray(times_ms)
    return {"median_ms": round(float(np.median(arr)), 3), "p90_ms": round(float(np.percentile(arr, 90)), 3)}


def measure(fn, runs: int, warmup: int = 5) -> dict:
    """Median and p90 milliseconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return _percentiles(times)


def worker(spec: dict) -> dict:
    """Runs in a child process: one format, scores + latency at each thread count + peak RSS."""
    from .contract import Contract
    from .sdk.decode import decode_image
    from .sdk.preprocess import preprocess_rgb

    contract = Contract.from_dict(spec["contract"])
    images = [Path(p) for p in spec["images"]]
    photo = Path(spec["photo"])
    result: dict = {"latency": {}}
    if spec["kind"] == "coreml-reference":
        return _reference_worker(spec, contract, images)
    if spec["kind"] == "torch":
        import torch

        from .models.load import load_trained

        trained = load_trained(spec["checkpoint"])
        model = trained.model

        def make(threads):
            torch.set_num_threads(threads)

            def infer(x):
                with torch.inference_mode():
                    return contract.clamp_score(float(model(torch.from_numpy(x)).reshape(-1)[0]))
            return infer, "NCHW"
    else:
        from .sdk.runtimes import load_runtime

        def make(threads):
            runtime = load_runtime(spec["path"], threads)
            return (lambda x: contract.clamp_score(runtime.run(x))), runtime.layout

    infer, layout = make(max(spec["threads"]))
    # one image at a time, so the peak RSS is the runtime's, not a list of decoded photos
    result["scores"] = [infer(preprocess_rgb(decode_image(p, contract), contract, layout)) for p in images]
    first = decode_image(images[0], contract)
    for threads in spec["threads"]:
        infer, layout = make(threads)
        x = preprocess_rgb(first, contract, layout)
        inference = measure(lambda: infer(x), spec["runs"])
        full = measure(lambda: infer(preprocess_rgb(decode_image(photo, contract), contract, layout)), spec["runs"])
        result["latency"][str(threads)] = {"inference": inference, "full_path": full}
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _reference_worker(spec: dict, contract, images: list[Path]) -> dict:
    """Core ML off macOS: scores from the NumPy reference executor, and its (checker, not phone) time."""
    from .export.coreml_reference import ReferenceExecutor
    from .sdk.decode import decode_image
    from .sdk.preprocess import resize_and_crop

    executor = ReferenceExecutor(spec["path"])
    scores, seconds = [], []
    for p in images:
        crop = resize_and_crop(decode_image(p, contract), contract)
        t0 = time.perf_counter()
        scores.append(contract.clamp_score(executor.run(crop)))
        seconds.append(time.perf_counter() - t0)
    return {"scores": scores, "executor_s_per_image": round(float(np.median(seconds)), 3),
            "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's ru_maxrss, which Linux carries
    over from the parent across fork + exec (every worker would report the parent's torch-sized peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run_worker(spec: dict) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", WORKER, "--worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env, timeout=3600)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def _accuracy(scores, records) -> dict:
    from .eval.metrics import plcc, srocc

    out = {}
    by_set: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_set.setdefault(r.dataset, []).append(i)
    for name, idx in sorted(by_set.items()):
        s = np.asarray(scores)[idx]
        m = np.asarray([records[i].mos for i in idx])
        out[name] = {"labels": "pseudo-MOS" if records[idx[0]].pseudo else "MOS", "n": len(idx),
                     "plcc": plcc(s, m), "srocc": srocc(s, m)}
    return out


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _bench_records(trained, images: Path | None, max_images: int) -> list:
    """The held-out images: a given manifest, else the model's own test part; at most ``max_images``."""
    if images is not None:
        from .data.loaders import load_manifest

        records = load_manifest(images, skip_bad=True).records
    else:
        records = run_split_part(trained.card, "test")
    records = seeded_subsample(records, max_images, 0)
    if not records:
        raise DiqaError("the checkpoint's card names no held-out test images; "
                        "pass --images MANIFEST.csv (image, mos)")
    return records


def _reference_row(path: Path, row: dict, base: dict, records: list, ref: np.ndarray, reference_images: int) -> dict:
    """Core ML off macOS: the reference executor, on fewer images (a checker, not a phone runtime)."""
    from .eval.metrics import srocc
    from .export.parity import REFERENCE_LABEL

    row["format"] = REFERENCE_LABEL
    sub = records[:reference_images]
    log.info(f"{row['format']} {row['precision']} on {len(sub)} images")
    res = _run_worker({**base, "images": [str(r.image) for r in sub], "kind": "coreml-reference", "path": str(path)})
    if "error" in res:
        return {**row, "status": f"error: {res['error']}"}
    s = np.asarray(res["scores"])
    return {**row, "accuracy": _accuracy(s, sub), "max_abs_vs_torch": float(np.abs(s - ref[:len(s)]).max()),
            "srocc_vs_torch": srocc(s, ref[:len(s)]), "executor_s_per_image": res["executor_s_per_image"],
            "peak_rss_mb": res["peak_rss_mb"],
            "status": f"checker, not a phone runtime: {res['executor_s_per_image']:.2f} s/image"}


def _artefact_row(path: Path, base: dict, records: list, ref: np.ndarray, reference_images: int) -> dict:
    """One exported file through the SDK in a worker process: accuracy, drift from PyTorch, latency, memory."""
    from .eval.metrics import srocc
    from .export.formats import FORMATS
    from .sdk.manifest import read_sidecar
    from .sdk.runtimes import FORMATS as RUNTIME_OF_SUFFIX

    manifest = read_sidecar(path)
    target = RUNTIME_OF_SUFFIX[path.suffix]
    row = {"format": FORMATS[target].title, "precision": manifest.precision if manifest else "?",
           "path": path.name, "size_mb": (sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                                          if path.is_dir() else path.stat().st_size) / 1e6}
    if not FORMATS[target].runs_here():
        return _reference_row(path, row, base, records, ref, reference_images)
    log.info(f"{row['format']} {row['precision']}")
    res = _run_worker({**base, "kind": "sdk", "path": str(path)})
    if "error" in res:
        return {**row, "status": f"error: {res['error']}"}
    s = np.asarray(res["scores"])
    return {**row, "accuracy": _accuracy(s, records), "max_abs_vs_torch": float(np.abs(s - ref).max()),
            "srocc_vs_torch": srocc(s, ref), "latency": res["latency"], "peak_rss_mb": res["peak_rss_mb"]}


def run_bench(export_dir: Path, checkpoint: Path, out_dir: Path, *, runs: int = 50, threads=(1, 2),
              max_images: int = 400, photo: Path | None = None, reference_images: int = 60,
              images: Path | None = None) -> dict:
    from .models.load import load_trained
    from .fileio import atomic_write_text

    trained = load_trained(checkpoint)
    records = _bench_records(trained, images, max_images)
    # the full path is timed on a JPEG (what a phone camera writes) when the set has one
    photo = photo or next(iter(sorted(Path(records[0].image).parent.glob("*.jpg"))), Path(records[0].image))
    base = {"contract": trained.contract.to_dict(), "images": [str(r.image) for r in records],
            "photo": str(photo), "runs": runs, "threads": list(threads)}
    log.info(f"PyTorch fp32 eager: {len(records)} held-out images, {runs} timed runs per setting")
    torch_res = _run_worker({**base, "kind": "torch", "checkpoint": str(checkpoint)})
    if "error" in torch_res:
        raise DiqaError(f"the PyTorch reference failed: {torch_res['error']}")
    ref = np.asarray(torch_res["scores"])
    weights = Path(checkpoint) / "best.safetensors" if Path(checkpoint).is_dir() else Path(checkpoint)
    rows = [{"format": "PyTorch", "precision": "fp32 eager", "size_mb": weights.stat().st_size / 1e6,
             "accuracy": _accuracy(ref, records), "max_abs_vs_torch": 0.0, "srocc_vs_torch": 1.0,
             **{k: torch_res[k] for k in ("latency", "peak_rss_mb")}}]
    rows += [_artefact_row(path, base, records, ref, reference_images)
             for path in sorted(p for p in Path(export_dir).iterdir()
                                if p.suffix in (".onnx", ".tflite", ".mlpackage") and "_static" not in p.name)]
    doc = {"date": date.today().isoformat(), "machine": machine_description(), "model": trained.name,
           "checkpoint": str(checkpoint), "photo_for_full_path": str(photo), "runs": runs,
           "threads": list(threads), "rows": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "bench.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(out_dir / "bench.md", markdown(doc))
    plot(doc, out_dir / "bench.png")
    return doc


def markdown(doc: dict) -> str:
    rows = doc["rows"]
    ref = rows[0]
    sets = sorted({s for r in rows for s in r.get("accuracy", {})})
    t_hi = str(max(doc["threads"]))
    head = ["format", "precision", "size MB (x PyTorch)"]
    for s in sets:
        lab = ref["accuracy"][s]["labels"]
        head += [f"{s} PLCC / SROCC ({lab}, n={ref['accuracy'][s]['n']})"]
    head += ["max abs diff / SROCC vs PyTorch"]
    for t in doc["threads"]:
        head += [f"inference ms {t} thr (median / p90)"]
    head += [f"full path ms {t_hi} thr (median / p90)", f"x PyTorch ({t_hi} thr inference)", "peak RSS MB"]
    table = []
    ref_ms = ref["latency"][t_hi]["inference"]["median_ms"]
    for r in rows:
        cells = [r["format"], r["precision"], f"{r['size_mb']:.2f} ({r['size_mb'] / ref['size_mb']:.2f}x)"]
        if "accuracy" not in r:
            cells += ["–"] * (len(head) - 3)
            cells[-1] = r.get("status", "")
            table.append(cells)
            continue
        for s in sets:
            a = r["accuracy"].get(s)
            n_note = f" (n={a['n']})" if a and a["n"] != ref["accuracy"][s]["n"] else ""
            cells.append(f"{a['plcc']:.4f} / {a['srocc']:.4f}{n_note}" if a else "–")
        cells.append(f"{r['max_abs_vs_torch']:.4f} / {r['srocc_vs_torch']:.4f}")
        if "latency" not in r:
            cells += ["–"] * len(doc["threads"]) + ["–", "–", f"{r['peak_rss_mb']:.0f}"]
            cells[-3] = r.get("status", "")
            table.append(cells)
            continue
        for t in doc["threads"]:
            lat = r["latency"][str(t)]["inference"]
            cells.append(f"{lat['median_ms']:.2f} / {lat['p90_ms']:.2f}")
        full = r["latency"][t_hi]["full_path"]
        cells += [f"{full['median_ms']:.1f} / {full['p90_ms']:.1f}",
                  f"{r['latency'][t_hi]['inference']['median_ms'] / ref_ms:.2f}x", f"{r['peak_rss_mb']:.0f}"]
        table.append(cells)
    return (f"Model `{doc['model']}`; {doc['machine']}; {doc['date']}; {doc['runs']} timed runs after 5 warm-up "
            f"runs; full path = decode + preprocess + inference of `{Path(doc['photo_for_full_path']).name}`.\n\n"
            + "\n".join(markdown_table(head, table)) + "\n")


def plot(doc: dict, path: Path) -> Path:
    from .eval.plots import pyplot

    plt = pyplot()

    t_hi = str(max(doc["threads"]))
    ref = doc["rows"][0]
    human = next((s for s, a in ref["accuracy"].items() if a["labels"] == "MOS"), next(iter(ref["accuracy"])))
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in doc["rows"]:
        if "latency" not in r:
            continue
        x = r["latency"][t_hi]["inference"]["median_ms"]
        y = r["accuracy"][human]["srocc"]
        ax.scatter(x, y, s=40)
        ax.annotate(f"{r['format']} {r['precision']}", (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set(xlabel=f"inference latency, median ms ({t_hi} threads, log scale)",
           ylabel=f"SROCC on held-out {human} ({ref['accuracy'][human]['labels']})",
           title="latency vs accuracy per format")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--export-dir", type=Path, required=True, help="folder written by `diqa-edge export`")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the training run the export came from")
    parser.add_argument("--out", type=Path, default=Path("out/bench"), help="where bench.md/json/png go")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per setting, after 5 warm-up runs")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--max-images", type=int, default=400, help="held-out images for accuracy (default 400)")
    parser.add_argument("--photo", type=Path, default=None, help="photo for the full-path latency")
    parser.add_argument("--images", type=Path, default=None,
                        help="labelled images as a manifest CSV (image, mos) instead of the checkpoint's "
                             "held-out test part")
    parser.add_argument("--reference-images", type=int, default=60,
                        help="off macOS, Core ML packages run in the NumPy reference executor (about 0.3 s "
                             "per image) on this many of the held-out images (default 60)")


def run(args: argparse.Namespace) -> int:
    threads = tuple(int(t) for t in args.threads.split(","))
    doc = run_bench(args.export_dir, args.checkpoint, args.out, runs=max(args.runs, 1), threads=threads,
                    max_images=args.max_images, photo=args.photo, reference_images=args.reference_images, images=args.images)
    print(markdown(doc))
    print(f"written: {args.out / 'bench.md'}, bench.json, bench.png")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
        sys.exit(0)
    from .commands import run_module

    sys.exit(run_module("python -m diqa_edge.bench (diqa-edge bench)", add_arguments, run, __doc__))
