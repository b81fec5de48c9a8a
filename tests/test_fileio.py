"""Files are written beside their destination and renamed: an interrupted writer leaves the old file whole."""

from __future__ import annotations

import pytest

from diqa_edge.fileio import atomic_write_text, written_in_place


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "chunk.npy"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with written_in_place(target) as tmp:
            assert tmp.suffix == ".npy" and tmp.parent == tmp_path    # writers infer the format from it
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["chunk.npy"]
    with written_in_place(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["chunk.npy"]
