"""A disk cache of decoded, resized images: decoding + resizing is the CPU bottleneck of training.

Entries are keyed by the contract's pixel fingerprint, the target shorter side
and the SHA-1 of the source file's bytes, so a changed photo or a changed
contract never serves stale pixels. Each entry is the exact uint8 array the
SDK's decode + resize produce (``.npy``), written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..contract import Contract
from ..fileio import written_in_place
from ..sdk.decode import decode_image
from ..sdk.preprocess import resize_shorter_side


def file_digest(path: str | Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ResizedImageCache:
    """``get(path)`` -> the decoded image with its shorter side at ``shorter_side`` (aspect kept)."""

    def __init__(self, root: str | Path, contract: Contract, shorter_side: int):
        self.contract = contract
        self.shorter_side = int(shorter_side)
        self.folder = Path(root) / contract.fingerprint() / f"s{self.shorter_side}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def entry(self, path: str | Path) -> Path:
        return self.folder / f"{file_digest(path)}.npy"

    def get(self, path: str | Path) -> np.ndarray:
        entry = self.entry(path)
        if entry.exists():
            try:
                arr = np.load(entry)
                self.hits += 1
                return arr
            except (OSError, ValueError):
                entry.unlink(missing_ok=True)  # a damaged entry is rebuilt, not trusted
        self.misses += 1
        arr = resize_shorter_side(decode_image(path, self.contract), self.shorter_side)
        with written_in_place(entry) as tmp:     # keeps .npy: np.save would add it
            np.save(tmp, arr)
        return arr
