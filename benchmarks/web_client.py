"""The browser client's speed beside the Python SDK's, and the screenshot the README shows.

Per photo, in headless Chromium (LiteRT.js 2.5.3 running the shipped ``.tflite``, WebAssembly, 2 threads
on a cross-origin isolated page): decode (the browser's own decoder, pixels read back from a canvas),
preprocessing (the contract's resize + crop + normalise in JavaScript) and inference, median and p90
over ``--repeats`` runs after one warm-up. Beside it, the Python SDK at 2 threads on the same file
(LiteRT), on the same photos. Two photo sets:
the bundled samples (0.2-1 MP) and one 12 MP JPEG (a sample upscaled to 4032 x 3024, as a phone
takes it); plus camera-sized frames (1280 x 720, 1920 x 1080) through the page's live-frame path.

    python benchmarks/web_client.py --out benchmarks/results/web_client.json --screenshot docs/web_client.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("decode_ms", "preprocess_ms", "inference_ms", "total_ms")
FRAMES = ((1280, 720), (1920, 1080))


def summary(rows: list[dict]) -> dict:
    return {k: {"median": round(float(np.median([r[k] for r in rows])), 1),
                "p90": round(float(np.percentile([r[k] for r in rows], 90)), 1)} for k in STEPS}


def sdk_rows(model: Path, photos: list[Path], repeats: int) -> list[dict]:
    from diqa_edge.sdk.scorer import QualityScorer

    scorer = QualityScorer(model, threads=2)
    rows = []
    for photo in photos:
        scorer.score(photo)                                       # warm-up
        for _ in range(repeats):
            r = scorer.score(photo)
            rows.append({"decode_ms": r.decode_ms, "preprocess_ms": r.preprocess_ms,
                         "inference_ms": r.inference_ms, "total_ms": r.total_ms})
    return rows


def page_rows(page, urls: list[str], repeats: int, call: str = "u => window.diqa.scoreUrl(u)") -> list[dict]:
    rows = []
    for url in urls:
        page.evaluate(call, url)                                  # warm-up
        rows += [{k: r[k] for k in STEPS} for r in (page.evaluate(call, url) for _ in range(repeats))]
    return rows


def parity(page, site: Path, urls: list[str]) -> dict:
    """The page against the Python SDK on the same file: crops, scores, answers, hints."""
    import base64

    from diqa_edge.sdk.decode import decode_image
    from diqa_edge.sdk.preprocess import resize_and_crop
    from diqa_edge.models.load import SHIPPED_MODEL
    from diqa_edge.sdk.scorer import QualityScorer

    scorer = QualityScorer(SHIPPED_MODEL, threads=2)
    crop_diff, exact, score_diff, same = [], 0, [], 0
    for url in urls:
        ref = resize_and_crop(decode_image(site / url, scorer.contract), scorer.contract)
        got = page.evaluate("u => window.diqa.cropOfUrl(u)", url)
        crop = np.frombuffer(base64.b64decode(got["crop"]), np.uint8).reshape(ref.shape)
        crop_diff.append(int(np.abs(crop.astype(int) - ref.astype(int)).max()))
        exact += crop_diff[-1] == 0
        mine, sdk = page.evaluate("u => window.diqa.scoreUrl(u)", url), scorer.score(site / url)
        score_diff.append(abs(mine["score"] - sdk.score))
        same += (mine["acceptable"], mine["hint"]) == (sdk.acceptable, sdk.hint)
    return {"photos": len(urls), "crop_max_abs_diff": max(crop_diff), "crops_byte_exact": exact,
            "score_max_abs_diff": float(max(score_diff)), "same_answer_and_hint": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "web_client.json")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "web_client.png")
    args = parser.parse_args(argv)

    from diqa_edge.cachedir import cache_root
    from diqa_edge.web.browser import find_chromium, page_at
    from diqa_edge.web.server import serving
    from diqa_edge.models.load import SHIPPED_MODEL
    from diqa_edge.web.site import build_site

    chromium = find_chromium()
    if chromium is None:
        print("no Chromium: apt-get install chromium", file=sys.stderr)
        return 1
    site = build_site(cache_root() / "web" / "bench-site")
    big = site / "extra" / "phone_12mp.jpg"
    big.parent.mkdir(exist_ok=True)
    Image.open(ROOT / "samples" / "skin_ISIC_0000051.jpg").convert("RGB") \
        .resize((4032, 3024), Image.Resampling.BICUBIC).save(big, quality=90)
    samples = [u for u in json.loads((site / "photos.json").read_text()) if u.startswith("samples/")]
    sets = {"samples": samples, "12 MP JPEG": ["extra/phone_12mp.jpg"]}
    result: dict = {"repeats": args.repeats, "chromium": None, "paths": {}}
    with serving(site) as url, page_at(url, chromium) as page:
        info = page.evaluate("window.diqa.info()")
        result["chromium"] = page.context.browser.version
        result["page"] = info
        for label, urls in sets.items():
            result["paths"][f"page (LiteRT.js, WASM, {info['threads']} threads) | {label}"] = \
                summary(page_rows(page, urls, args.repeats))
        for w, h in FRAMES:
            call = f"u => window.diqa.scoreFrameOfUrl(u, {w}, {h})"
            result["paths"][f"page (LiteRT.js, WASM, {info['threads']} threads) | {w} x {h} frame"] = \
                summary(page_rows(page, samples[:4], args.repeats, call))
        page.evaluate("u => window.diqa.showUrl(u)", "samples/skin_ISIC_0000083_blurred.jpg")
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.screenshot))
        result["parity"] = parity(page, site, json.loads((site / "photos.json").read_text()) + sets["12 MP JPEG"])
    with serving(site) as url, page_at(url + "?threads=1", chromium) as page:
        threads = page.evaluate("window.diqa.info()")["threads"]
        result["paths"][f"page (LiteRT.js, WASM, {threads} thread) | samples"] = \
            summary(page_rows(page, samples, args.repeats))
    for label, urls in sets.items():
        result["paths"][f"Python SDK (LiteRT, shipped .tflite, 2 threads) | {label}"] = \
            summary(sdk_rows(SHIPPED_MODEL, [site / u for u in urls], args.repeats))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("| path | photos | decode ms | preprocessing ms | inference ms | total ms median (p90) |")
    print("|---|---|---|---|---|---|")
    print(f"parity with the SDK: {result['parity']}")
    for key, s in result["paths"].items():
        path, photos = key.split(" | ")
        print(f"| {path} | {photos} | {s['decode_ms']['median']} | {s['preprocess_ms']['median']} | "
              f"{s['inference_ms']['median']} | {s['total_ms']['median']} ({s['total_ms']['p90']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
