"""Stratified splits with a fixed split seed, and nested stratified OOD fine-tuning subsets.

docs/method.md, Splits and OOD pools: where a dataset has no official split (ISEAR 60/20/20; SSEC's 5%
validation; Emotion-Stimulus' 95% evenly into validation/test, 5% pool) the split is
stratified with a fixed split seed independent of the training seed, and the OOD
fine-tuning subsets at p% (section 4.4, p in 1, 3, 5) are p% of the OOD dataset's full
size, drawn stratified from its OOD train pool.

Both come from one idea, `stratified_order`: a permutation of the samples in which every
prefix is class-proportional (within one sample per class). Cutting it into contiguous
chunks gives stratified splits with exact totals; taking prefixes of it gives subsets that
are stratified *and nested* (the 1% set lies inside the 3% set inside the 5% set), which
keeps the OOD fine-tuning curves comparable across p.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np

from trainables.data.base import PreparedDataset

_logger = logging.getLogger(__name__)

#: docs/method.md, Data: the split seed is fixed and does not follow the training seed.
DEFAULT_SPLIT_SEED = 13


def round_half_up(x: float) -> int:
    """Round .5 up (Python's `round` is banker's rounding, which would make 2.5 -> 2)."""
    return int(math.floor(x + 0.5))


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A permutation whose every prefix holds each class in proportion to its size.

    Each class is shuffled with `seed`; the j-th sample of class c (of n_c) gets the key
    (j + 0.5) / n_c, and samples are sorted by key (ties broken at random). The first k
    samples then hold round(k * n_c / n) samples of class c, to within one.

    Args:
        labels: integer labels, shape (n,).
        seed: the split seed.

    Returns:
        int64 indices into `labels`, a permutation of range(n).
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(n, dtype=np.float64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    tie_break = rng.random(n)
    return np.lexsort((tie_break, keys)).astype(np.int64)


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Sizes that sum to n, proportional to `fractions` (largest-remainder rounding).

    Ties in the remainders go to the earlier split.
    """
    if not fractions or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {tuple(fractions)}")
    raw = [f * n for f in fractions]
    sizes = [int(math.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - sizes[i]), i))
    for i in order[: n - sum(sizes)]:
        sizes[i] += 1
    return sizes


def stratified_split(labels: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Cut the stratified order into consecutive chunks of the given sizes.

    Args:
        labels: integer labels, shape (n,).
        sizes: chunk sizes summing to n.
        seed: the split seed (fixed; docs/method.md, Data).

    Returns:
        One sorted int64 index array per chunk.
    """
    if sum(sizes) != len(labels):
        raise ValueError(f"split sizes {tuple(sizes)} do not sum to {len(labels)} samples")
    order = stratified_order(labels, seed)
    bounds = np.cumsum([0, *sizes])
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def ood_finetune_indices(ood: PreparedDataset, percent: float, seed: int = DEFAULT_SPLIT_SEED) -> np.ndarray:
    """Indices into `ood.train` (the OOD pool) for fine-tuning on `percent`% OOD data.

    docs/method.md, Splits and OOD pools: n = p% of the OOD dataset's *full* size
    (`ood.size`, all three splits), drawn stratified from the pool, capped at the pool
    (for Emotion-Stimulus 5% is the whole pool). The draw is a prefix of one stratified
    order per seed, so smaller percentages are subsets of larger ones.

    Args:
        ood: the prepared OOD dataset.
        percent: p, in percent (1, 3, 5 in the paper).
        seed: subset seed; the same seed gives the same indices.

    Returns:
        Sorted int64 indices into `ood.train`.
    """
    if percent < 0:
        raise ValueError(f"percent must be >= 0, got {percent}")
    n = min(round_half_up(percent / 100.0 * ood.size), len(ood.train))
    order = stratified_order(ood.train.labels, seed)
    _logger.debug("%s: %s%% OOD fine-tuning -> %d of %d pool samples", ood.name, percent, n, len(ood.train))
    return np.sort(order[:n])
