"""Builders the tests share: tiny copies of the public data sets' layouts (``layouts``), a tiny trained
run folder and image folders (``fixture_model``), camera faults on a sample (``camera_views``); the
fuzzer's harness is ``diqa_edge.bench_fuzz`` (the benchmark runs it too). ``tests/`` is
on pytest's ``pythonpath`` (pyproject.toml), so tests import them as ``helpers.*``."""
