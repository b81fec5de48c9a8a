"""What makes two image files the same image, for every cache that keys on images: the SHA-1 of their bytes.

Why content and not the file's place: a data folder laid out anew (copied, unpacked again, moved) keeps its
bytes but not its paths or modification times, and a cache keyed by those threw away hours of features.
Why SHA-1: the resized-image cache already named its entries by the SHA-1 hex of the file, so they stay valid.

Hashing ~8 GB of images on every run would cost what the caches save, so a memo remembers the digest of
each file under its (resolved path, size, mtime_ns): after the first run an id costs a ``stat`` and a dict
lookup. The price: a file rewritten in place with the same size AND the same mtime (``touch -r``, ``cp -p``
of other bytes of equal length, two writes within one timestamp tick) keeps its old digest until its
mtime changes. Any ordinary edit changes the mtime, which is a new memo key, so the file is hashed again.

The memo is ``<cache root>/identity/digests.jsonl``, one JSON object a line:
``{"path": "/abs/x.jpg", "size": 123, "mtime_ns": 1700000000000000000, "sha1": "<40 hex>"}``.
It is read once per process and new digests are appended in batches (every ``FLUSH_EVERY`` new digests or
``FLUSH_SECONDS``, before a fork and at exit), each batch in one ``O_APPEND`` write. Append-only, not
replace-on-write, because two processes (a training run and a benchmark, or data-loader workers) append
without losing each other's lines, where two read-modify-replace writers would each drop the other's
batch; a line cut by a crash or interleaved by a concurrent writer is not valid JSON of the right shape
and is skipped on reading, so the worst a damaged memo costs is hashing that file again. When stale lines
(earlier versions of a file, duplicates from concurrent writers) outnumber live ones, the loader rewrites
the memo whole via ``fileio.atomic_write_text``; a batch another process appends in that instant is lost,
which again only costs a re-hash.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import re
import threading
import time
from multiprocessing import util as multiprocessing_util
from pathlib import Path
from typing import Iterable

from .cachedir import cache_root
from .fileio import atomic_write_text, stat_key

log = logging.getLogger(__name__)

FLUSH_EVERY = 256       # new digests per appended batch
FLUSH_SECONDS = 30.0    # ... or this long since the last batch (a worker killed before its exit loses less)
_SHA1 = re.compile(r"[0-9a-f]{40}")

StatKey = tuple[str, int, int]   # (resolved path, size, mtime_ns)


def content_digest(path: str | os.PathLike) -> str:
    """The SHA-1 hex of the file's bytes, read in 1 MiB pieces (a 12 MP photo never sits in memory twice)."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def memo_path() -> Path:
    """``$DIQA_EDGE_DIGEST_MEMO`` when set (the tests point it, and every process they start, at a folder of
    their own), else ``<cache root>/identity/digests.jsonl``."""
    override = os.environ.get("DIQA_EDGE_DIGEST_MEMO")
    return Path(override) if override else cache_root() / "identity" / "digests.jsonl"


def _parse(line: str) -> tuple[StatKey, str] | None:
    """One memo line, or None for anything but a whole, well-typed entry (cut, interleaved, hand-edited)."""
    try:
        entry = json.loads(line)
        key = (entry["path"], entry["size"], entry["mtime_ns"])
        digest = entry["sha1"]
    except (ValueError, TypeError, KeyError):
        return None
    path, size, mtime = key
    if not (isinstance(path, str) and type(size) is int and type(mtime) is int and isinstance(digest, str)
            and _SHA1.fullmatch(digest)):
        return None
    return key, digest


def _line(key: StatKey, digest: str) -> str:
    return json.dumps({"path": key[0], "size": key[1], "mtime_ns": key[2], "sha1": digest}) + "\n"


class DigestMemo:
    """The file-stat -> content-digest memo of one memo file (module docstring: format, sharing, limits)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.hashed = 0                         # files this object read to hash (the memo had no answer)
        self._known: dict[StatKey, str] | None = None
        self._pending: list[str] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def _load(self) -> dict[StatKey, str]:
        if self._known is None:
            self._known, lines = {}, 0
            try:
                text = self.path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                text = ""
            except OSError as err:      # a folder in its place, no permission: the memo only saves time
                log.warning("could not read the image-digest memo %s (%s): every image is hashed", self.path, err)
                text = ""
            for line in text.splitlines():
                lines += 1
                parsed = _parse(line)
                if parsed:
                    self._known[parsed[0]] = parsed[1]
            if lines > 2 * len({key[0] for key in self._known}) + 1024:
                self._compact()
        return self._known

    def _compact(self) -> None:
        """Keep each path's latest entry: an earlier (size, mtime) of a path is a version that is gone."""
        latest = {key[0]: (key, digest) for key, digest in self._known.items()}   # dicts keep file order
        try:
            atomic_write_text(self.path, "".join(_line(k, d) for k, d in latest.values()))
        except OSError as err:
            log.warning("could not compact the image-digest memo %s: %s", self.path, err)

    def digest(self, path: str | os.PathLike) -> str:
        """The content digest of ``path``: from the memo when its stat is unchanged, else hashed and noted."""
        key = stat_key(path)
        known = self._load()
        found = known.get(key)
        if found is None:
            found = known[key] = content_digest(key[0])
            self.hashed += 1
            with self._lock:
                self._pending.append(_line(key, found))
                due = len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS
            if due:
                self.flush()
        return found

    def flush(self) -> None:
        """Append the digests found since the last flush, in one write (a concurrent appender's lines stay
        whole lines). The memo only saves time: a cache folder that cannot be written is warned about."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        if not batch:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, "".join(batch).encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as err:
            log.warning("could not write the image-digest memo %s: %s", self.path, err)


_memos: dict[Path, DigestMemo] = {}


def memo() -> DigestMemo:
    """This process's memo of the current cache root (one per root, so a test's ``$DIQA_EDGE_CACHE`` is
    its own)."""
    path = memo_path()
    if path not in _memos:
        _memos[path] = DigestMemo(path)
    return _memos[path]


def image_id(path: str | os.PathLike) -> str:
    """An image's identity in every cache: the SHA-1 hex of its bytes (through the memo)."""
    return memo().digest(path)


def image_ids(paths: Iterable[str | os.PathLike]) -> list[str]:
    """``image_id`` of each path, the new digests written in one batch at the end."""
    m = memo()
    ids = [m.digest(p) for p in paths]
    m.flush()
    return ids


def flush_all() -> None:
    """Every memo's pending digests: at exit, and before a fork so a child does not write them again."""
    for m in list(_memos.values()):
        m.flush()


def _fresh_locks() -> None:
    """A forked child must not inherit a lock another thread of its parent held at the fork."""
    for m in _memos.values():
        m._lock = threading.Lock()


class _WorkerExit:
    """A multiprocessing child (a DataLoader worker) ends without running ``atexit``, and starts by clearing
    the finalizers it inherited; the after-fork hook below registers, in the child, the flush
    ``multiprocessing`` runs as the child's last act."""

    @staticmethod
    def register(_self) -> None:
        from multiprocessing import util

        util.Finalize(None, flush_all, exitpriority=100)


_WORKER_EXIT = _WorkerExit()
atexit.register(flush_all)
os.register_at_fork(before=flush_all, after_in_child=_fresh_locks)
multiprocessing_util.register_after_fork(_WORKER_EXIT, _WorkerExit.register)
