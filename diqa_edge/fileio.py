"""Writing files so that a reader never sees half of one: the bottom layer's one rule for every writer.

Why: long jobs are interrupted (a session ends, Ctrl-C, a full disk); a half-written feature chunk, model
file or JSON read back later is worse than a missing one. Everything is written beside its destination
under a temporary name and renamed onto it, which POSIX makes atomic within one folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp's 0600 would make shipped files unreadable to others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def written_in_place(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path``, for writers that want a file name (``torch.save``, ``np.save``,
    ``savefig``, ``onnx.save``): it keeps ``path``'s suffix (they infer the format from it), is renamed onto
    ``path`` when the block ends, and is removed when the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stat_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """(resolved path, size, mtime_ns): the file as it is now, for memos that must notice an edit without
    reading the file (the image-digest memo, the model probe's verified files)."""
    p = Path(path).resolve()
    st = p.stat()
    return str(p), st.st_size, st.st_mtime_ns
