"""A disk cache of decoded, resized images: decoding + resizing is the CPU bottleneck of training.

Entries are keyed by the contract's pixel fingerprint, the target shorter side
and the image's id, the project's one rule (``identity.image_id``): the SHA-1
of the source file's bytes, so a changed contract never serves stale pixels and
the same photo at another path or with another mtime is a hit. The digest comes
from the identity memo (path, size, mtime), so a hit no longer reads the whole
file to hash it; the memo's one blind spot (a same-size rewrite that keeps its
mtime serves the old pixels until the mtime changes) is stated in
``diqa_edge/identity.py``. Entries written when the cache hashed every file
itself are named by the same SHA-1 hex, so they stay valid. Each entry is the
exact uint8 array the SDK's decode + resize produce (``.npy``), written
atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract import Contract
from ..fileio import written_in_place
from ..identity import image_id
from ..sdk.decode import decode_image
from ..sdk.preprocess import resize_shorter_side


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
        return self.folder / f"{image_id(path)}.npy"

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
