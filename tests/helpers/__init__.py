"""Builders the tests share: tiny copies of the public data sets' layouts (``layouts``), a tiny trained
run folder and image folders (``fixture_model``), the fuzzer's mutations (``fuzzing``). ``tests/`` is
on pytest's ``pythonpath`` (pyproject.toml), so tests import them as ``helpers.*``."""
