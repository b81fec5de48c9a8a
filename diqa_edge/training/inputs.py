"""Images -> tensors for training and evaluation, built from the SDK's own preprocessing functions.

Evaluation uses exactly the phone's path (decode, shorter side to S with the
contract's filter, center crop, normalise), so a validation PLCC is a claim
about what the phone computes. Training augmentation is the paper's: shorter
side to 1.125 x S, random S x S crop, random horizontal flip; nothing
photometric, since that would change the true quality. The one exception is
opt-in (``dither``): noise under one grey level, which no rater can see but
which moved a 384-px model's score by up to 1.2 (benchmarks/RESULTS.md), so
the score the phone computes does not hang on its decoder's rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..contract import Contract
from ..data.cache import ResizedImageCache
from ..data.records import Record
from ..sdk.decode import decode_image
from ..sdk.preprocess import center_crop, normalise, resize_shorter_side, to_layout

TRAIN_RESIZE_FACTOR = 1.125


class _Resizer:
    """Shorter side to ``size``, through the disk cache when one is configured."""

    def __init__(self, contract: Contract, size: int, cache_dir: str | Path | None):
        self.contract = contract
        self.size = size
        self.cache = ResizedImageCache(cache_dir, contract, size) if cache_dir else None

    def __call__(self, path: Path) -> np.ndarray:
        if self.cache is not None:
            return self.cache.get(path)
        return resize_shorter_side(decode_image(path, self.contract), self.size)


def _to_tensor(crop: np.ndarray, contract: Contract) -> torch.Tensor:
    return torch.from_numpy(to_layout(normalise(crop, contract), "NCHW")[0])


class EvalImages(Dataset):
    """The contract's resize + center crop: bit-identical to ``diqa_edge.sdk.preprocess``."""

    def __init__(self, records: list[Record], contract: Contract, cache_dir=None):
        self.records = records
        self.contract = contract
        self.resize = _Resizer(contract, contract.input_size, cache_dir)

    def __len__(self) -> int:
        return len(self.records)

    def crop(self, index: int) -> np.ndarray:
        return center_crop(self.resize(self.records[index].image), self.contract.input_size)

    def __getitem__(self, index: int):
        return _to_tensor(self.crop(index), self.contract), torch.tensor(self.records[index].mos, dtype=torch.float32)


class TrainImages(Dataset):
    """Random crop + flip of the image resized 12.5 % larger; randomness keyed by (seed, epoch, index)
    so a resumed run draws the same crops as an uninterrupted one.

    Each item: (image, MOS, loss weight, reason target over REASONS, 1 if that target is known else 0,
    index of the record's dataset in ``datasets``)."""

    def __init__(self, records: list[Record], contract: Contract, weights: np.ndarray, seed: int,
                 cache_dir=None, resize_factor: float = TRAIN_RESIZE_FACTOR,
                 datasets: list[str] | None = None, dither: float = 0.0):
        from ..data.distort import REASONS, reason_target

        self.records = records
        self.contract = contract
        self.weights = weights
        self.seed = seed
        self.epoch = 0
        self.dither = dither
        self.resize = _Resizer(contract, int(round(contract.input_size * resize_factor)), cache_dir)
        targets = [reason_target(r.distortion) for r in records]
        self.reason_known = np.array([t is not None for t in targets], dtype=np.float32)
        self.reasons = np.stack([t if t is not None else np.zeros(len(REASONS), np.float32)
                                 for t in targets]) if records else np.zeros((0, len(REASONS)), np.float32)
        datasets = datasets or sorted({r.dataset for r in records})
        self.dataset_index = np.array([datasets.index(r.dataset) for r in records], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        size = self.contract.input_size
        img = self.resize(self.records[index].image)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        top = int(rng.integers(0, img.shape[0] - size + 1))
        left = int(rng.integers(0, img.shape[1] - size + 1))
        crop = img[top:top + size, left:left + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if self.dither > 0:
            # an amplitude drawn per image from [0, dither], clean images included, so the label is seen
            # not to depend on it; values stay on the 0-255 scale (not rounded: that is the point)
            amp = rng.uniform(0, self.dither)
            crop = np.clip(crop.astype(np.float32) + rng.uniform(-amp, amp, crop.shape).astype(np.float32), 0, 255)
        return (_to_tensor(crop, self.contract), torch.tensor(self.records[index].mos, dtype=torch.float32),
                torch.tensor(self.weights[index]), torch.from_numpy(self.reasons[index]),
                torch.tensor(self.reason_known[index]), torch.tensor(self.dataset_index[index]))
