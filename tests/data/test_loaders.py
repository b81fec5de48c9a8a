"""Every loader on a copy of its published layout; bad rows reported all at once with file and line."""

from __future__ import annotations

import pytest

from helpers import layouts
from conftest import SHARED_DATA
from diqa_edge.data.loaders import load_biq2021, load_koniq, load_livec, load_manifest
from diqa_edge.data.records import DatasetError, rescale_mos
from diqa_edge.data.registry import DATASETS, load_dataset


def test_rescale_mos_is_the_papers_linear_rule():
    assert rescale_mos(1.0, 1, 5) == 1.0 and rescale_mos(5.0, 1, 5) == 10.0
    assert rescale_mos(3.0, 1, 5) == pytest.approx(5.5)
    assert rescale_mos(0.5, 0, 1) == pytest.approx(5.5)
    assert rescale_mos(48.86, 0, 100) == pytest.approx(1 + 9 * 0.4886)
    with pytest.raises(ValueError):
        rescale_mos(1, 5, 5)


@pytest.mark.parametrize("name, count, role", [
    ("koniq", 4, "all"), ("kadid", 24, "all"), ("spaq", 5, "all"), ("gfiqa", 4, "all"),
    ("biq2021", 5, "trainval"), ("livec", 6, "test"), ("derm", 9, "all")])
def test_each_layout_loads(tmp_path, name, count, role):
    layouts.BUILDERS[name](tmp_path)
    data = load_dataset(name, tmp_path)
    assert len(data) == count and data.role == role == DATASETS[name].role
    lo, hi = DATASETS[name].native_range
    for r in data.records:
        assert r.image.is_file()
        assert lo <= r.mos_native <= hi and 1.0 <= r.mos <= 10.0
        assert r.mos == pytest.approx(rescale_mos(r.mos_native, lo, hi))


def test_koniq_values_and_both_csv_variants(tmp_path):
    layouts.koniq(tmp_path / "a")
    layouts.koniq(tmp_path / "b", variant="sets")
    for root in (tmp_path / "a", tmp_path / "b"):
        recs = {r.name: r for r in load_koniq(root).records}
        r = recs["10004473376.jpg"]
        assert r.mos_native == pytest.approx(3.828571429) and r.std == pytest.approx(0.527278526)
        assert r.n_ratings == 105 and r.group == "10004473376.jpg"


def test_kadid_groups_by_reference_and_knows_the_distortion(tmp_path):
    layouts.kadid(tmp_path)
    recs = load_dataset("kadid", tmp_path).records
    r = next(r for r in recs if r.name == "I02_10_03.png")
    assert r.group == "I02.png" and r.distortion == "jpeg" and r.level == 3
    assert r.std == pytest.approx(0.3 ** 0.5)
    assert len({r.group for r in recs}) == 4


def test_biq2021_header_with_empty_columns_and_upper_case_suffix(tmp_path):
    layouts.biq2021(tmp_path)
    recs = {r.name: r for r in load_biq2021(tmp_path).records}
    assert recs["ss01 (12).jpg"].image.name == "ss01 (12).JPG"
    assert recs["ss03 (3753).jpg"].mos == pytest.approx(1 + 9 * 0.8471)


def test_livec_excludes_the_seven_training_images(tmp_path):
    layouts.livec(tmp_path)
    data = load_livec(tmp_path)
    assert [r.name for r in data.records][:2] == ["101.bmp", "102.bmp"]
    assert not any(r.name.startswith("t") for r in data.records)
    assert data.records[0].mos_native == pytest.approx(66.3595) and data.records[0].std == 10.0


def test_manifest_reads_groups_pseudo_and_relative_paths(tmp_path):
    layouts.manifest(tmp_path)
    data = load_manifest(tmp_path / "manifest.csv")
    assert data.pseudo and all(r.pseudo for r in data.records)
    jpeg2 = next(r for r in data.records if r.name == "images/p2__jpeg_2.png")
    assert jpeg2.group == "p2" and jpeg2.level == 2 and jpeg2.mos == pytest.approx(6.1)
    assert jpeg2.n_ratings == 40 and jpeg2.std == 0.5


def test_every_bad_row_is_reported_with_file_and_line(tmp_path):
    layouts.biq2021(tmp_path)
    csv_path = tmp_path / "Train (Images and MOS).csv"
    csv_path.write_text(csv_path.read_text() + "ss09 (1).jpg,0.5,,\n"      # line 7: image missing
                        "ss03 (3753).jpg,0.3,,\n"                           # line 8: duplicate
                        "ss04 (1).jpg,abc,,\n"                               # line 9: not a number
                        ",0.5,,\n"                                            # line 10: empty name
                        "ss05 (2).jpg,1.7,,\n")                              # line 11: out of range
    with pytest.raises(DatasetError) as info:
        load_biq2021(tmp_path)
    lines = sorted(p.line for p in info.value.problems)
    assert lines == [7, 8, 9, 10, 11]
    text = str(info.value)
    assert f"{csv_path}:7" in text and "not found" in text and "duplicate" in text
    assert "not a number" in text and "outside the declared range [0.0, 1.0]" in text
    with pytest.warns(UserWarning, match="skipped 5 bad row"):
        data = load_biq2021(tmp_path, skip_bad=True)
    assert len(data) == 5 and len(data.skipped) == 5


def test_spaq_bad_rows_name_the_spreadsheet_row(tmp_path):
    from openpyxl import load_workbook

    xlsx = layouts.spaq(tmp_path)
    book = load_workbook(xlsx)
    book.active.append(["00099.jpg", 50.0])
    book.active.append(["00002.jpg", 150.0])
    book.save(xlsx)
    with pytest.raises(DatasetError) as info:
        load_dataset("spaq", tmp_path)
    assert sorted(p.line for p in info.value.problems) == [7, 8]


def test_missing_label_file_names_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="koniq10k_scores_and_distributions.csv"):
        load_koniq(tmp_path)


@pytest.mark.skipif(not (SHARED_DATA / "biq2021").exists(), reason="../shared/data/biq2021 not present")
def test_real_biq2021_release_loads_clean():
    data = load_biq2021(SHARED_DATA / "biq2021")
    with open(SHARED_DATA / "biq2021" / "Train (Images and MOS).csv", newline="") as fh:
        rows = sum(1 for line in fh.read().splitlines()[1:] if line.split(",")[0].strip())
    assert len(data) == rows >= 4000 and not data.skipped      # every labelled row loads (6,000 since 2026-12-02)
    assert any(r.image.suffix == ".JPG" for r in data.records)  # the one upper-case file is found
