"""Torch dataset over a :class:`~training.segmenter.cache.SegCache`, and the batch order.

Determinism and resumability come from keys, not from hidden RNG state: the order of an
epoch is a permutation drawn from ``(seed, epoch)``, and a sample's augmentation from
``(seed, epoch, index)``. So any worker count gives the same batches, and a run resumed
at (epoch, batch) sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .augment import AugmentParams, CropParams, make_sample
from .cache import SegCache

_ORDER_STREAM = 0x5EED0  # separates the order stream from the augmentation stream
_AUG_STREAM = 0xA06


class SegDataset(Dataset):
    """Samples of a cache: ``dataset[i]`` or ``dataset[(i, epoch)]`` ->
    (image (1, H, W) float32 normalised, mask (1, H, W) float32 0/1).

    ``segments``: "main" (main SOI only) or "all" (side branches too: each is a horizontal
    segment task of its own). Samples whose mask is a main + side union (case-folder
    caches) are left out unless ``allow_union``. ``augment`` None: no augmentation, the
    case's own click points (validation).
    """

    def __init__(
        self,
        cache: SegCache | str,
        *,
        crop: CropParams | None = None,
        augment: AugmentParams | None = None,
        segments: str = "all",
        allow_union: bool = False,
        seed: int = 0,
    ):
        if segments not in ("main", "all"):
            raise ValueError(f"segments must be 'main' or 'all', got {segments!r}")
        self.cache = cache if isinstance(cache, SegCache) else SegCache(cache)
        self.crop = crop or CropParams()
        self.augment = augment
        self.seed = int(seed)
        t = self.cache.tables
        keep = np.ones(self.cache.n_samples, dtype=bool)
        if segments == "main":
            keep &= t["sample_segment"] == 0
        if not allow_union:
            keep &= ~t["sample_union"]
        self.indices = np.flatnonzero(keep)

    def __len__(self) -> int:
        return len(self.indices)

    def segment_of(self, i: int) -> int:
        return int(self.cache.tables["sample_segment"][self.indices[i]])

    def sample(self, i: int, epoch: int = 0, rep: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Numpy (image (H, W) float32, mask (H, W) uint8) of item ``i``; ``rep`` > 0
        draws a different augmentation of the same item (a cache repeated in a mix)."""
        s = int(self.indices[i])
        view = int(self.cache.tables["sample_view"][s])
        stored, bits = self.cache.view_stored(view)
        mask = self.cache.sample_mask(s)
        start, end = self.cache.sample_points(s)
        rng = None
        if self.augment is not None:
            key = [_AUG_STREAM, self.seed, int(epoch), s] + ([int(rep)] if rep else [])
            rng = np.random.default_rng(key)
        return make_sample(stored, bits, mask, start, end, self.crop, rng, self.augment)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        x, y = self.sample(int(i), int(epoch))
        return torch.from_numpy(x)[None], torch.from_numpy(y.astype(np.float32))[None]


class MixedDataset(Dataset):
    """Several :class:`SegDataset` as one, each repeated a whole number of times per epoch
    (e.g. synthetic and real samples in a chosen proportion). Keys as for SegDataset."""

    def __init__(self, parts: list[tuple[SegDataset, int]]):
        if not parts or any(r < 1 for _, r in parts):
            raise ValueError("MixedDataset needs parts with repeats >= 1")
        self.parts = parts
        self.table = np.concatenate(
            [
                np.stack(
                    [
                        np.full(len(ds) * r, k),
                        np.tile(np.arange(len(ds)), r),
                        np.repeat(np.arange(r), len(ds)),
                    ],
                    axis=1,
                )
                for k, (ds, r) in enumerate(parts)
            ]
        ).astype(np.int64)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        k, j, rep = (int(v) for v in self.table[int(i)])
        x, y = self.parts[k][0].sample(j, int(epoch), rep)
        return torch.from_numpy(x)[None], torch.from_numpy(y.astype(np.float32))[None]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([_ORDER_STREAM, int(seed), int(epoch)]).permutation(n)


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, epoch) keys for one epoch, starting at batch ``start_batch``;
    the last incomplete batch is dropped (batch norm, and a fixed steps-per-epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start_batch: int = 0):
        self.n, self.batch_size = int(n), int(batch_size)
        self.seed, self.epoch, self.start_batch = int(seed), int(epoch), int(start_batch)

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int) -> int:
        return n // batch_size

    def __len__(self) -> int:
        return max(self.batches_per_epoch(self.n, self.batch_size) - self.start_batch, 0)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = epoch_order(self.n, self.seed, self.epoch)
        for b in range(self.start_batch, self.batches_per_epoch(self.n, self.batch_size)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield [(int(i), self.epoch) for i in idx]
