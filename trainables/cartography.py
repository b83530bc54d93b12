"""Data maps (Swayamdipta et al. 2020): who is easy to learn and who is ambiguous.

docs/method.md, Data maps: record every training sample's gold-label probability after each epoch
of the baseline run; confidence = mean over epochs, variability = population std (ddof=0, as
`allenai/cartography` does). Sorted by confidence descending, the top half is easy-to-learn,
the rest ambiguous. EA at 66% takes the top 33% most confident as easy and the 33% most
variable as ambiguous.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DataMap:
    """Training dynamics summary of one (dataset, model, seed, settings) baseline run."""

    gold_probs: np.ndarray  # (epochs, n)
    correct: np.ndarray  # (epochs, n) bool: the argmax was the gold label

    @property
    def confidence(self) -> np.ndarray:
        return self.gold_probs.mean(axis=0)

    @property
    def variability(self) -> np.ndarray:
        return self.gold_probs.std(axis=0)

    @property
    def correctness(self) -> np.ndarray:
        return self.correct.mean(axis=0)

    def regions(self, fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(easy, ambiguous) row indices.

        fraction 1.0: the two halves by confidence (the paper, section 4.4). fraction f < 1:
        the top f/2 by confidence as easy and the top f/2 by variability (from the rest) as
        ambiguous, so "66%" uses 33% + 33% of the data.
        """
        n = self.gold_probs.shape[1]
        # stable sorts with the row index as tie-breaker keep the split deterministic
        by_conf = np.lexsort((np.arange(n), -self.confidence))
        if fraction >= 1.0:
            half = n // 2 + n % 2
            return np.sort(by_conf[:half]), np.sort(by_conf[half:])
        k = max(1, int(round(n * fraction / 2)))
        easy = by_conf[:k]
        rest = np.setdiff1d(np.arange(n), easy)
        by_var = rest[np.lexsort((rest, -self.variability[rest]))]
        return np.sort(easy), np.sort(by_var[:k])

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"gold_probs": self.gold_probs, "correct": self.correct}

    @classmethod
    def from_arrays(cls, arrays) -> "DataMap":
        return cls(np.asarray(arrays["gold_probs"]), np.asarray(arrays["correct"]).astype(bool))
