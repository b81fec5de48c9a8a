"""What a patient waits for before the page's first answer (#34 item 4): per .tflite file, its size, what
the page downloads in all before its first answer (the model, LiteRT.js's WebAssembly build, the page's
own files: the browser's resource timing, bytes as sent), and, in headless Chromium (LiteRT.js,
WebAssembly, 2 threads), the time from opening the page to the model in memory and to the first photo
scored, with the page served from this machine (so the network costs nothing here: the download over a
phone connection is the size divided by the connection's speed, written beside it for 10 Mbit/s).
Each file is opened ``--repeats`` times in a fresh browser (no cache); medians.

    python benchmarks/page_first_answer.py --model shipped=diqa_edge/models/default.tflite
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MBIT_S = 10.0
# every byte the page fetched (the document too), as sent: the model, the runtime, scripts, the sample photo
PAGE_BYTES = """() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
    .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0)"""


def main(argv=None) -> int:
    from diqa_edge.cachedir import cache_root
    from diqa_edge.eval.report import markdown_table
    from diqa_edge.web.browser import find_chromium, page_at
    from diqa_edge.web.server import serving
    from diqa_edge.web.site import build_site

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH", help="a .tflite file (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/page_first_answer.json"))
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium: apt-get install chromium", file=sys.stderr)
        return 1
    from diqa_edge.errors import DiqaError

    rows = []
    for name, path in (m.split("=", 1) for m in args.model):
        try:
            site = build_site(cache_root() / "web" / f"first-answer-{Path(path).stem}", model=Path(path))
        except DiqaError as exc:   # e.g. the page's runtime not installed: `make web-deps`
            print(f"page_first_answer: {exc}", file=sys.stderr)
            return 1
        ready, first, fetched = [], [], []
        for _ in range(args.repeats):
            with serving(site) as url:
                t0 = time.perf_counter()
                with page_at(url, chromium) as page:
                    ready.append(1000 * (time.perf_counter() - t0))
                    page.evaluate("u => window.diqa.scoreUrl(u)", "samples/skin_ISIC_0000051.jpg")
                    first.append(1000 * (time.perf_counter() - t0))
                    fetched.append(page.evaluate(PAGE_BYTES))
        mb = Path(path).stat().st_size / 1e6
        page_mb = float(np.median(fetched)) / 1e6
        rows.append({"file": name, "model_mb": round(mb, 2), "page_download_mb": round(page_mb, 2),
                     "model_ready_ms": round(float(np.median(ready))),
                     "first_answer_ms": round(float(np.median(first))),
                     "download_s_at_10_mbit": round(page_mb * 8 / MBIT_S, 1)})
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=1) + "\n")
    print("\n".join(markdown_table(list(rows[0]), [list(r.values()) for r in rows])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
