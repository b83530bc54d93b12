"""The shape every prepared dataset has, whatever file it was read from.

A loader turns a published file layout into a `PreparedDataset`: three `Split`s of
(text, integer label), the label names in index order, and a count of every row it
dropped, by reason (docs/method.md, Data: nothing is dropped silently).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class DataError(ValueError):
    """Bad or missing input data; the message names the file (and line) and the fix."""


@dataclass(frozen=True)
class Split:
    """One split: texts and their integer labels (indices into the dataset's `labels`)."""

    texts: tuple[str, ...]
    labels: np.ndarray  # int64, shape (n,)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: np.ndarray) -> "Split":
        indices = np.asarray(indices, dtype=np.int64)
        return Split(tuple(self.texts[i] for i in indices), self.labels[indices].copy())


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset prepared as docs/method.md, Data, says.

    For an OOD dataset, `train` is the OOD fine-tuning pool and `labels` are in the
    same index order as its ID partner's.
    """

    name: str
    labels: tuple[str, ...]
    train: Split
    validation: Split
    test: Split
    drops: dict[str, int] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> Split:
        if name not in ("train", "validation", "test"):
            raise KeyError(f"unknown split {name!r}; use train, validation or test")
        return getattr(self, name)

    @property
    def size(self) -> int:
        """All samples over the three splits (what OOD percentages are taken of)."""
        return len(self.train) + len(self.validation) + len(self.test)
