"""Where caches and data live: one variable each, so a user moves them without editing a command."""

from __future__ import annotations

from pathlib import Path

from diqa_edge.cachedir import cache_root, data_root


def test_the_cache_and_the_data_follow_their_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("DIQA_EDGE_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("DIQA_EDGE_DATA", str(tmp_path / "d"))
    assert cache_root() == tmp_path / "c" and data_root() == tmp_path / "d"
    monkeypatch.delenv("DIQA_EDGE_CACHE")
    monkeypatch.delenv("DIQA_EDGE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "diqa-edge" and data_root() == Path("../shared/data")


def test_the_training_command_reads_its_default_data_root_from_the_variable(monkeypatch, tmp_path):
    import argparse

    from diqa_edge.training.cli import add_arguments

    monkeypatch.setenv("DIQA_EDGE_DATA", str(tmp_path))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--datasets", "biq2021", "--out", "x"]).data_root == tmp_path
