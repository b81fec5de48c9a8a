"""The README's table of the shipped file's figures, written from the committed results, never by hand.

Why: the README quoted a previous file's figures for weeks after the file changed. ``readme_table`` turns
the shipped model card (``diqa_edge/models/default.card.json``: the file's held-out metrics), the phone
gate's results (``benchmarks/results/phone_gate.json``) and the gate at 1:1
(``benchmarks/results/detail_gate.json``) into the lines between the README's
``<!-- figures -->`` markers; ``tests/test_readme_figures.py`` fails when the README and the results
disagree, and ``diqa-edge figures`` rewrites the block.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .report import markdown_table

START, END = "<!-- figures: written by diqa-edge figures -->", "<!-- /figures -->"
ROOT = Path(__file__).resolve().parents[2]
CARD = ROOT / "diqa_edge" / "models" / "default.card.json"
PHONE_GATE = ROOT / "benchmarks" / "results" / "phone_gate.json"
DETAIL_GATE = ROOT / "benchmarks" / "results" / "detail_gate.json"
PAGE = ROOT / "benchmarks" / "results" / "page_first_answer.json"
FULL_SIZE_ROWS = (("gaussian_blur 4", "2 px of blur at full size (only visible at 1:1)"),
                  ("motion_blur 4", "6 px of shake at full size"),
                  ("noise 5", "heavy sensor noise at full size"))
README = ROOT / "README.md"


def _levels(gate: dict, family: str) -> str:
    row = gate["families"][family]
    return " / ".join(f"{row[lv]['retake']:.2f}" for lv in ("4", "5") if lv in row)


def readme_table(card: dict, phone_gate: dict, file_mb: float, detail_gate: dict | None = None,
                 page: dict | None = None) -> list[str]:
    """The lines of the README's figures table: the shipped file, and the previous one where measured."""
    runs = phone_gate["results"]
    names = [n for n in ("shipped", "previous") if n in runs]
    biq = card["shipped_test_metrics"]["biq2021"]["shipped"]
    rows = [["phone photos of patients no model saw, accepted as taken"]
            + [f"{runs[n]['as_taken_accept']:.3f} of {runs[n]['n_as_taken']}" for n in names]]
    for family, what in (("glare", "a flash reflection"), ("occlusion", "a finger or cloth in the frame"),
                         ("low_light", "low light (dark, noisy, shaken)"), ("shake_noise", "shake with noise"),
                         ("noise", "sensor noise"), ("motion_blur", "motion blur"), ("contrast", "low contrast"),
                         ("darken", "under-exposure")):
        rows.append([f"{what}: sent back at level 4 / 5"] + [_levels(runs[n], family) for n in names])
    if detail_gate:
        derm = detail_gate["skin"]["dermoscopy test, own size"]
        n = derm["as taken"]["n"]
        for key, what in FULL_SIZE_ROWS:
            r = derm[key]
            rows.append([f"{what}, dermoscopy photos at their own size (n = {n}): sent back",
                         f"{r['sent_back_with_1to1']:.2f} (the model alone: {r['sent_back_model_alone']:.2f})"]
                        + ["–"] * (len(names) - 1))
    rows.append([f"held-out BIQ2021 SROCC (n = {biq['n']:,})",
                 f"{biq['srocc']:.3f} [{biq['srocc_ci'][0]:.3f}, {biq['srocc_ci'][1]:.3f}]"] + ["–"] * (len(names) - 1))
    rows.append(["file size", f"{file_mb:.2f} MB"] + ["–"] * (len(names) - 1))
    row = next((r for r in page["rows"] if r["file"] == "shipped"), None) if page else None
    if row:
        rows.append(["the browser page (this file in LiteRT.js): downloaded before its first answer, first answer",
                     f"{row['page_download_mb']:.1f} MB, {row['first_answer_ms'] / 1000:.1f} s"]
                    + ["–"] * (len(names) - 1))
    return markdown_table(["figure"] + [f"{n} file" for n in names], rows)


def current_lines() -> list[str]:
    card = json.loads(CARD.read_text())
    gate = json.loads(PHONE_GATE.read_text())
    detail = json.loads(DETAIL_GATE.read_text()) if DETAIL_GATE.exists() else None
    page = json.loads(PAGE.read_text()) if PAGE.exists() else None
    return readme_table(card, gate, (CARD.parent / "default.tflite").stat().st_size / 1e6, detail, page)


def block(lines: list[str]) -> str:
    return START + "\n" + "\n".join(lines) + "\n" + END


def readme_block(text: str) -> str | None:
    """The figures block in a README's text, or None."""
    m = re.search(re.escape(START) + r".*?" + re.escape(END), text, flags=re.S)
    return m.group(0) if m else None


def add_arguments(parser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the README's table and the results disagree")


def run(args) -> int:
    from ..errors import DiqaError

    text = README.read_text()
    old = readme_block(text)
    if old is None:
        raise DiqaError(f"{README}: no figures block ({START} ... {END})")
    new = block(current_lines())
    if args.check:
        if old != new:
            print(f"{README}: the figures table differs from the results; run `diqa-edge figures`", file=sys.stderr)
            return 1
        print(f"{README}: the figures table agrees with the results")
        return 0
    README.write_text(text.replace(old, new))
    print(f"{README}: figures written from {CARD.name}, {PHONE_GATE.name} and {DETAIL_GATE.name}")
    return 0


if __name__ == "__main__":
    from ..commands import run_module

    raise SystemExit(run_module("python -m diqa_edge.eval.figures (diqa-edge figures)", add_arguments, run,
                                "Write the README's figures table from the committed results (maintainers)."))
