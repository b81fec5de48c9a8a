"""Fuzzing the SDK and the CLI with damaged files and odd arrays: a score or a typed error, every time.

A fixed seed and small counts here (CI); ``benchmarks/fuzz_inputs.py`` runs the same loops longer and
reports the counts and peak memory in ``docs/robustness.md``.
"""

from __future__ import annotations

import pytest

from conftest import FIXTURE_MODELS
from diqa_edge.sdk import QualityScorer
from diqa_edge.bench_fuzz import fuzz_cli, fuzz_images, fuzz_model_files, property_runs, seed_files


@pytest.fixture(scope="module")
def scorer():
    return QualityScorer(FIXTURE_MODELS / "brightness.onnx", threads=1)


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return seed_files(tmp_path_factory.mktemp("seeds"))


@pytest.mark.parametrize("name", ["arrays of any dtype and shape", "Pillow images of any mode and size"])
def test_hypothesis_inputs_give_a_score_or_a_typed_error(scorer, name):
    property_runs(scorer, examples=120)[name]()


def test_damaged_photos_in_memory(scorer, blobs):
    tally = fuzz_images(scorer, blobs, count=240, seed=0)
    assert tally.failures == [] and tally.tried == 240
    assert tally.refused > 20 and tally.scored > 20     # both paths exercised, not one dead end


def test_damaged_model_files_and_manifests(blobs, tmp_path):
    tally = fuzz_model_files(blobs, tmp_path, count=12, seed=0)
    assert tally.failures == [] and tally.tried == 12 and tally.refused > 0


def test_damaged_files_through_the_cli(blobs, tmp_path):
    tally, peak_kb = fuzz_cli(blobs, tmp_path / "batch", count=60, seed=0)
    assert tally.failures == [] and tally.scored + tally.refused == 60
    assert 0 < peak_kb < 1_500_000     # a CLI process scoring 400 x 300 photos stays well under 1.5 GB


def test_the_model_files_the_long_fuzz_run_found(blobs, tmp_path):
    """benchmarks/fuzz_inputs.py (seed 1) found two damaged .tflite files that escaped as raw errors: a
    truncation (IndexError: the file had no input tensor) and a header edit (MemoryError: std::bad_alloc,
    a tensor of absurd size, which the parent process then tried to allocate itself). Replayed here."""
    import numpy as np

    from diqa_edge.errors import ModelLoadError
    from diqa_edge.bench_fuzz import mutate

    rng = np.random.default_rng(1)
    found = {}
    for i in range(69):     # the run's own order of mutations: even cases damage the model, odd the manifest
        kind, data = mutate(blobs["tflite" if i % 2 == 0 else "manifest.json"], rng)
        if i in (32, 68):
            found[i] = (kind, data)
    assert [k for k, _ in found.values()] == ["truncation", "header edit"]
    for i, (_, data) in found.items():
        (tmp_path / f"m{i}.tflite").write_bytes(data)
        (tmp_path / f"m{i}.manifest.json").write_bytes(blobs["manifest.json"])
        with pytest.raises(ModelLoadError, match="not a loadable"):
            QualityScorer(tmp_path / f"m{i}.tflite")


def test_hostile_manifest_fields_are_refused_or_harmless(tmp_path):
    """Issue 32: one manifest field at a time set to NaN, Infinity, 1e30, a string, a list, null, or renamed:
    a one-line refusal or a finite answer, never another exception (fixed seed; the model carries no
    manifest of its own, so the sidecar alone decides)."""
    from diqa_edge.bench_fuzz import fuzz_manifest_fields

    tally = fuzz_manifest_fields(FIXTURE_MODELS / "brightness.tflite", tmp_path, count=80, seed=0)
    assert tally.failures == [] and tally.tried == 80
    assert tally.refused > 30 and tally.scored > 0      # both paths exercised (a renamed free-text field, score_min 0)


def test_random_byte_file_names_through_the_cli(tmp_path, sample_photos):
    """Issue 32: file names of random bytes (non-UTF-8, newlines, escapes, leading dashes): one JSON record
    each, exit 0, no traceback (fixed seed)."""
    from diqa_edge.bench_fuzz import fuzz_file_names

    tally = fuzz_file_names(sample_photos[0].read_bytes(), tmp_path / "names", count=40, seed=0)
    assert tally.failures == [] and tally.scored == 40
