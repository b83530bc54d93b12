"""A deterministic stand-in for trainables.models.EmotionClassifier, small enough to compute by hand.

Row i of `token_rows` is the single token i, and `TokenTableNet.features` looks its feature
vector up in a table: no encoder, no dropout, so a test can write down every feature, logit
and loss in numpy. `classify` puts a tanh before `out_proj`: with a purely affine head (as in
EmotionClassifier in eval mode) mixing features and mixing logits give the same logits, and a
test could not tell the two MixUp layers apart.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainables.batching import Encoded


def token_rows(labels) -> Encoded:
    """One single-token row per label: row i is token i."""
    return Encoded(tuple(np.array([i]) for i in range(len(labels))), np.asarray(labels, dtype=np.int64), pad_id=0)


class TokenTableNet(nn.Module):
    """features(row i) = table[i]; classify(h) = out_proj(tanh(h)); forward = classify(features)."""

    def __init__(self, table: np.ndarray, weight: np.ndarray, bias: np.ndarray):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))
        self.out_proj = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.out_proj.weight.copy_(torch.tensor(weight))
            self.out_proj.bias.copy_(torch.tensor(bias))

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.table[input_ids[:, 0]]

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_proj(torch.tanh(features))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(input_ids, attention_mask))

    def numpy_classify(self, features: np.ndarray) -> np.ndarray:
        """The same head in float64 numpy, for the hand computations."""
        w, b = (p.detach().double().numpy() for p in (self.out_proj.weight, self.out_proj.bias))
        return np.tanh(features) @ w.T + b


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
