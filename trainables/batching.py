"""Tokenised rows and dynamically padded batches.

Texts are tokenised once per (split, model, max_length) without padding; a batch is padded
only to its own longest row, so a short-text dataset like ISEAR computes far fewer tokens
than padding every row to max_length (bench/padding.py measures it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Encoded:
    """Token ids of some rows (no padding) and their integer labels."""

    ids: tuple[np.ndarray, ...]
    labels: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(r) for r in self.ids), dtype=np.int64, count=len(self.ids))

    def concat(self, other: "Encoded") -> "Encoded":
        return Encoded(self.ids + other.ids, np.concatenate([self.labels, other.labels]), self.pad_id)

    def subset(self, indices: np.ndarray) -> "Encoded":
        return Encoded(tuple(self.ids[i] for i in indices), self.labels[np.asarray(indices)], self.pad_id)


def encode(texts, labels, tokenizer, max_length: int) -> Encoded:
    out = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    ids = tuple(np.asarray(r, dtype=np.int64) for r in out["input_ids"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(ids, np.asarray(labels, dtype=np.int64), int(pad_id))


def collate(data: Encoded, rows: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask of `rows`, padded to the longest of them."""
    seqs = [data.ids[i] for i in rows]
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), data.pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
