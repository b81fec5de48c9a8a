"""An image's id is the SHA-1 of its bytes, wherever the file lies; the stat-keyed memo that spares reading it
again is reused across processes, survives damage and concurrent writers, and has the one blind spot its
docstring states (a same-size rewrite that keeps its mtime)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from conftest import SAMPLES
from diqa_edge import identity

PHOTO = SAMPLES / "photo_coffee.jpg"
OTHER = SAMPLES / "photo_rocket.jpg"


@pytest.fixture
def memo_file(tmp_path, monkeypatch):
    """The memo where the user's ``$DIQA_EDGE_CACHE`` puts it, with no memo loaded in this process yet."""
    monkeypatch.delenv("DIQA_EDGE_DIGEST_MEMO")                         # undo the suite's isolation
    monkeypatch.setenv("DIQA_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(identity, "_memos", {})
    return tmp_path / "cache" / "identity" / "digests.jsonl"


def sha1(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def hashes_counted(monkeypatch) -> list:
    read = []
    real = identity.content_digest
    monkeypatch.setattr(identity, "content_digest", lambda p: read.append(p) or real(p))
    return read


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_same_bytes_at_a_new_path_or_mtime_are_the_same_image(memo_file, tmp_path):
    first = tmp_path / "a" / "x.jpg"
    first.parent.mkdir()
    shutil.copyfile(PHOTO, first)
    moved = tmp_path / "relaid" / "renamed.jpg"
    moved.parent.mkdir()
    shutil.copyfile(PHOTO, moved)
    os.utime(moved, ns=(1_000_000_000, 1_000_000_000))
    assert identity.image_id(first) == identity.image_id(moved) == sha1(PHOTO)
    assert identity.image_id(OTHER) == sha1(OTHER) != sha1(PHOTO)


def test_a_rewrite_is_hashed_again_once_its_mtime_moves_and_not_before(memo_file, tmp_path, monkeypatch):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(PHOTO.read_bytes())
    stamp = (2_000_000_000, 2_000_000_000)
    os.utime(photo, ns=stamp)
    before = identity.image_id(photo)
    edited = bytearray(PHOTO.read_bytes())
    edited[-3] ^= 0xFF                               # other bytes, same size
    photo.write_bytes(bytes(edited))
    os.utime(photo, ns=stamp)                        # ... and the mtime forced back
    assert identity.image_id(photo) == before        # the documented blind spot: served from the memo
    os.utime(photo, ns=(stamp[0], stamp[1] + 1))     # any mtime change is a new memo key
    read = hashes_counted(monkeypatch)
    assert identity.image_id(photo) == hashlib.sha1(bytes(edited)).hexdigest() != before
    assert read == [str(photo.resolve())]


def test_the_memo_is_written_in_one_batch_and_a_new_process_hashes_nothing(memo_file, tmp_path, monkeypatch):
    photos = sorted(SAMPLES.glob("*.jpg"))[:5]
    read = hashes_counted(monkeypatch)
    ids = identity.image_ids(photos)
    assert ids == [sha1(p) for p in photos] and len(read) == 5
    assert [(e["path"], e["size"], e["sha1"]) for e in lines(memo_file)] == [
        (str(p.resolve()), p.stat().st_size, sha1(p)) for p in photos]
    assert identity.image_ids(photos) == ids and len(read) == 5       # same process: dict look-ups

    monkeypatch.setattr(identity, "_memos", {})                       # a new process reads the memo once
    assert identity.image_ids(photos) == ids and len(read) == 5 and identity.memo().hashed == 0
    assert len(lines(memo_file)) == 5                                  # and has nothing to add

    monkeypatch.setattr(identity, "FLUSH_EVERY", 1000)
    monkeypatch.setattr(identity, "_memos", {})
    more = tmp_path / "more.jpg"
    more.write_bytes(OTHER.read_bytes())
    identity.image_id(more)
    assert len(lines(memo_file)) == 5                                  # pending: no write per image
    identity.flush_all()                                               # (what atexit and a fork do)
    assert lines(memo_file)[-1]["sha1"] == sha1(OTHER) and len(lines(memo_file)) == 6


def test_damaged_memo_lines_are_skipped_and_a_whole_line_is_trusted(memo_file, tmp_path, monkeypatch):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(PHOTO.read_bytes())
    path, st = str(photo.resolve()), photo.stat()
    planted = "0123456789abcdef0123456789abcdef01234567"
    good = {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha1": planted}
    memo_file.parent.mkdir(parents=True)
    memo_file.write_bytes(b"\n".join([
        b'{"path": "/x.jpg", "size": 1, "mti',                               # cut by a crash
        json.dumps({**good, "sha1": "not hex"}).encode(),
        json.dumps({**good, "size": "12"}).encode(),
        json.dumps([path, st.st_size]).encode(),
        b"\xff\xfe garbage",
        json.dumps(good).encode(),
    ]) + b"\n")
    read = hashes_counted(monkeypatch)
    assert identity.image_id(photo) == planted and read == []   # proof the memo was read, not the file
    other = tmp_path / "o.jpg"
    other.write_bytes(OTHER.read_bytes())
    assert identity.image_id(other) == sha1(OTHER)             # damage does not stop the memo growing


def test_two_processes_appending_keep_each_others_lines(memo_file, tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(PHOTO.read_bytes())
    b.write_bytes(OTHER.read_bytes())
    first, second = identity.DigestMemo(memo_file), identity.DigestMemo(memo_file)
    first.digest(a)
    second.digest(b)             # loaded before the first one's flush: a replace would drop a's line
    first.flush()
    second.flush()
    third = identity.DigestMemo(memo_file)
    assert (third.digest(a), third.digest(b), third.hashed) == (sha1(PHOTO), sha1(OTHER), 0)


def test_a_memo_of_mostly_stale_lines_is_rewritten_with_each_paths_latest(memo_file, tmp_path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(PHOTO.read_bytes())
    st = photo.stat()
    stale = [{"path": str(photo.resolve()), "size": st.st_size, "mtime_ns": t, "sha1": "a" * 40} for t in range(2000)]
    now = {"path": str(photo.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha1": sha1(PHOTO)}
    memo_file.parent.mkdir(parents=True)
    memo_file.write_text("".join(json.dumps(e) + "\n" for e in [*stale, now]))
    memo = identity.DigestMemo(memo_file)
    assert memo.digest(photo) == sha1(PHOTO) and memo.hashed == 0
    assert lines(memo_file) == [now]


def test_a_worker_process_writes_its_digests_when_it_ends(memo_file, tmp_path):
    """A DataLoader or multiprocessing worker ends without running atexit (and clears the finalizers it
    inherited): the digests it found were lost, and every run hashed those files again."""
    import multiprocessing

    copy = tmp_path / "w.jpg"
    shutil.copyfile(OTHER, copy)
    worker = multiprocessing.get_context("fork").Process(target=identity.image_id, args=(copy,))
    worker.start()
    worker.join(timeout=60)
    assert worker.exitcode == 0
    assert [(e["path"], e["sha1"]) for e in lines(memo_file)] == [(str(copy.resolve()), sha1(OTHER))]


def test_a_memo_that_cannot_be_read_costs_only_time(memo_file, tmp_path, caplog):
    memo_file.mkdir(parents=True)                     # a folder where the memo file should be
    assert identity.image_id(PHOTO) == sha1(PHOTO)
    identity.memo().flush()
    assert "could not read the image-digest memo" in caplog.text and "could not write" in caplog.text
