"""MixUp partner choice: random, random from the other data-map subset, or by saliency.

docs/method.md, Saliency and Sim-MixUp: saliency S_i = |softmax(z_i) - onehot(y_i)|, the gradient
of CE with respect to the logits in closed form (no extra backward). Each training sample's
latest saliency lives in a table, refreshed whenever the sample is forwarded. A sample of the
easy half takes, in the ambiguous half, the sample of largest and of smallest cosine
similarity of saliency as partners, and the reverse. The search is a matrix product per batch
(no per-sample Python loop); `similarity_partners` does the whole set in chunks.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def saliency(logits: torch.Tensor, labels: torch.Tensor, signed: bool = False) -> torch.Tensor:
    """dL_CE/dz per sample, in closed form: softmax(z) - onehot(y) (absolute unless signed)."""
    grad = torch.softmax(logits.float(), dim=-1) - F.one_hot(labels, logits.shape[-1]).float()
    return grad if signed else grad.abs()


def similarity_partners(
    table: torch.Tensor, queries: torch.Tensor, candidates: torch.Tensor, chunk: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Most similar and most dissimilar candidate (by cosine of saliency) for every query row.

    Args:
        table: (n, k) saliency of every row.
        queries: row indices to find partners for.
        candidates: row indices partners are drawn from.
        chunk: queries per matrix product, to bound memory at (chunk x len(candidates));
            default 64 on CPU (a block that stays in cache; bench/partner_search.py times
            it against a per-sample loop at GoEmotions scale), 4096 on a GPU.

    Returns:
        Row indices (into `table`) of the argmax and argmin partner of each query; ties go to
        the first candidate in `candidates` order.
    """
    if table.device.type == "cpu":
        # numpy's row-wise argmax/argmin over a cache-sized block beats torch's on CPU
        # (bench/RESULTS.md, section 5); on a GPU the search stays in torch.
        return _search_numpy(table, queries, candidates, chunk or 64)
    return _search_torch(table, queries, candidates, chunk or 4096)


def _search_numpy(table: torch.Tensor, queries: torch.Tensor, candidates: torch.Tensor, chunk: int):
    t = table.detach().float().numpy()
    cand_idx = candidates.numpy()
    cand_t = np.ascontiguousarray(_unit_rows(t[cand_idx]).T)
    q = _unit_rows(t[queries.numpy()])
    best = np.empty(len(q), dtype=np.int64)
    worst = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), chunk):
        sims = q[start : start + chunk] @ cand_t
        best[start : start + chunk] = sims.argmax(axis=1)
        worst[start : start + chunk] = sims.argmin(axis=1)
    return torch.from_numpy(cand_idx[best]), torch.from_numpy(cand_idx[worst])


def _search_torch(table: torch.Tensor, queries: torch.Tensor, candidates: torch.Tensor, chunk: int):
    cand = F.normalize(table[candidates].float(), dim=1)
    best, worst = [], []
    for start in range(0, len(queries), chunk):
        q = F.normalize(table[queries[start : start + chunk]].float(), dim=1)
        sims = q @ cand.T
        best.append(candidates[sims.argmax(dim=1)])
        worst.append(candidates[sims.argmin(dim=1)])
    return torch.cat(best), torch.cat(worst)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (an all-zero row, a perfectly fit sample, stays zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class RandomPartners:
    """One random partner per row from a pool (Rand-M-MixUp: the whole set; OOD FT: ambiguous ID rows)."""

    n_partners = 1

    def __init__(self, pool: np.ndarray):
        self.pool = np.asarray(pool)

    def pick(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.pool[rng.integers(0, len(self.pool), size=(len(rows), 1))]

    def refresh(self, rows: np.ndarray, logits: torch.Tensor, labels: torch.Tensor) -> None:
        pass


class OtherSubsetPartners:
    """EA-M-MixUp: a random partner from the other data-map subset."""

    n_partners = 1

    def __init__(self, easy: np.ndarray, ambiguous: np.ndarray, n_rows: int):
        self.easy, self.ambiguous = np.asarray(easy), np.asarray(ambiguous)
        self.is_easy = np.zeros(n_rows, dtype=bool)
        self.is_easy[self.easy] = True

    def pick(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from_ambiguous = self.ambiguous[rng.integers(0, len(self.ambiguous), size=len(rows))]
        from_easy = self.easy[rng.integers(0, len(self.easy), size=len(rows))]
        return np.where(self.is_easy[rows], from_ambiguous, from_easy)[:, None]

    def refresh(self, rows: np.ndarray, logits: torch.Tensor, labels: torch.Tensor) -> None:
        pass


class SaliencyPartners:
    """Sim-MixUp: the most similar and most dissimilar sample of the other subset, by saliency.

    scope "half" searches the whole other subset (the paper); "batch" only a random
    mini-batch of it, as the predecessor code did within its paired batch.
    """

    n_partners = 2

    def __init__(self, easy: np.ndarray, ambiguous: np.ndarray, initial_saliency: np.ndarray,
                 scope: str = "half", signed: bool = False):
        self.easy = torch.as_tensor(np.asarray(easy), dtype=torch.long)
        self.ambiguous = torch.as_tensor(np.asarray(ambiguous), dtype=torch.long)
        self.table = torch.as_tensor(np.asarray(initial_saliency), dtype=torch.float32).clone()
        self.is_easy = torch.zeros(len(self.table), dtype=torch.bool)
        self.is_easy[self.easy] = True
        self.scope, self.signed = scope, signed

    def _candidates(self, pool: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
        if self.scope == "batch" and len(pool) > size:
            return pool[torch.from_numpy(np.sort(rng.choice(len(pool), size=size, replace=False)))]
        return pool

    def pick(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows_t = torch.as_tensor(rows, dtype=torch.long)
        out = torch.empty((len(rows), 2), dtype=torch.long)
        easy_mask = self.is_easy[rows_t]
        for mask, pool in ((easy_mask, self.ambiguous), (~easy_mask, self.easy)):
            if mask.any():
                sim, dis = similarity_partners(self.table, rows_t[mask], self._candidates(pool, len(rows), rng))
                out[mask, 0], out[mask, 1] = sim, dis
        return out.numpy()

    def refresh(self, rows: np.ndarray, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Store the latest saliency of the rows just forwarded (docs/method.md, Saliency and Sim-MixUp)."""
        self.table[torch.as_tensor(rows, dtype=torch.long)] = saliency(logits.detach(), labels, self.signed).cpu()
