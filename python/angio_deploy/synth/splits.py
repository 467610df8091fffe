"""Dataset splits as seed ranges: nothing generated is committed, a split is
(engine version, first seed, count). See docs/DATASET.md."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    name: str
    first_seed: int
    count: int

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.count)


#: train 0..99,999 (use as many as needed), validation and test far from it.
TRAIN = Split("train", 0, 100_000)
VAL = Split("val", 1_000_000, 1_000)
TEST = Split("test", 2_000_000, 1_000)
SPLITS = {s.name: s for s in (TRAIN, VAL, TEST)}


def split_of(seed: int) -> str | None:
    """Name of the split a seed belongs to, or None."""
    for s in SPLITS.values():
        if seed in s.seeds:
            return s.name
    return None
