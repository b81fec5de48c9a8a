"""The README's figures table is the committed results, not a copy typed once (issue 33: the README quoted
a previous file's figures after the file changed)."""

from __future__ import annotations

from diqa_edge.eval.figures import README, block, current_lines, readme_block


def test_the_readme_figures_are_the_committed_results():
    found = readme_block(README.read_text())
    assert found is not None, "README.md lost its figures block"
    assert found == block(current_lines()), "README.md's figures differ from the results: diqa-edge figures"


def test_the_table_reads_the_shipped_files_figures():
    lines = current_lines()
    assert lines[0].startswith("| figure | shipped file") and any("accepted as taken" in line for line in lines)
    assert any(line.startswith("| held-out BIQ2021 SROCC") for line in lines)


def test_the_table_carries_the_gate_at_1_to_1():
    import json

    from diqa_edge.eval.figures import DETAIL_GATE

    derm = json.loads(DETAIL_GATE.read_text())["skin"]["dermoscopy test, own size"]
    row = next(line for line in current_lines() if line.startswith("| heavy sensor noise at full size"))
    assert f"{derm['noise 5']['sent_back_with_1to1']:.2f} (the model alone: {derm['noise 5']['sent_back_model_alone']:.2f})" in row
