"""Training tasks: what one step computes. The loop (trainables/train.py) only backprops `loss`.

Each task is called as `task(model, data, rows, progress, rng)` and returns a dict with
`loss`, the `logits` of `rows` (for data maps and accuracy) and its parts (`ce`, `mix`, `kd`).
A method changes the task, never the loop (STYLE.md 5).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainables.batching import Encoded, collate


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k y_k log softmax(z)_k, for MixUp's soft labels."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


class CrossEntropyTask:
    """Plain fine-tuning with cross-entropy (the `ce` teacher recipe, OOD FT without MixUp)."""

    def __call__(self, model, data: Encoded, rows: np.ndarray, progress: float, rng: np.random.Generator) -> dict:
        device = next(model.parameters()).device
        ids, mask = collate(data, rows, device)
        labels = torch.as_tensor(data.labels[rows], device=device)
        logits = model(ids, mask)
        ce = F.cross_entropy(logits.float(), labels)
        return {"loss": ce, "logits": logits, "ce": ce.detach()}


class MixupTask:
    """Manifold MixUp of each row with its partner(s) (METHOD.md, Saliency and Sim-MixUp).

    All rows and partners go through the encoder in one forward; mixing happens on the head's
    penultimate features (or on the logits, `layer="logits"`), lam ~ Beta(alpha, alpha) drawn
    per mixed sample. Loss = main_weight * CE(row) + the rest split evenly over the mixes.
    """

    def __init__(self, partners, alpha: float = 5.0, main_weight: float = 0.8, layer: str = "features"):
        self.partners, self.alpha, self.main_weight, self.layer = partners, alpha, main_weight, layer

    def __call__(self, model, data: Encoded, rows: np.ndarray, progress: float, rng: np.random.Generator) -> dict:
        device = next(model.parameters()).device
        mates = self.partners.pick(rows, rng)  # (b, n_partners)
        all_rows = np.concatenate([rows, mates.T.reshape(-1)])
        ids, mask = collate(data, all_rows, device)
        labels = torch.as_tensor(data.labels[all_rows], device=device)
        feats = model.features(ids, mask)
        all_logits = model.classify(feats)
        b, k = len(rows), all_logits.shape[-1]
        onehot = F.one_hot(labels, k).float()
        source = feats if self.layer == "features" else all_logits
        ce = F.cross_entropy(all_logits[:b].float(), labels[:b])
        mix_weight = (1.0 - self.main_weight) / mates.shape[1]
        mix_total = torch.zeros((), device=device)
        for j in range(mates.shape[1]):
            part = slice(b * (j + 1), b * (j + 2))
            lam = torch.as_tensor(rng.beta(self.alpha, self.alpha, size=(b, 1)), dtype=source.dtype, device=device)
            mixed = lam * source[:b] + (1 - lam) * source[part]
            mixed_logits = model.classify(mixed) if self.layer == "features" else mixed
            target = lam.float() * onehot[:b] + (1 - lam.float()) * onehot[part]
            mix_total = mix_total + soft_cross_entropy(mixed_logits, target)
        self.partners.refresh(all_rows, all_logits, labels)
        loss = self.main_weight * ce + mix_weight * mix_total
        return {"loss": loss, "logits": all_logits[:b], "ce": ce.detach(), "mix": mix_total.detach()}


class DistillTask:
    """Born-again self-distillation with teacher annealing (METHOD.md, Self-distillation).

    loss = (1 - lam_t) CE(student, gold) + lam_t T^2 KL(softmax(z_t / T) || softmax(z_s [/ T])),
    lam_t = 1 - step / total_steps (BAM and CKD), the student unscaled unless scale_student.
    The teacher's logits on the training rows are computed once before training, in eval
    mode, so they are the same every epoch.
    """

    def __init__(self, teacher_logits: np.ndarray, temperature: float, scale_student: bool = False,
                 annealing: bool = True):
        self.teacher_logits = torch.as_tensor(teacher_logits, dtype=torch.float32)
        self.temperature, self.scale_student, self.annealing = temperature, scale_student, annealing

    def __call__(self, model, data: Encoded, rows: np.ndarray, progress: float, rng: np.random.Generator) -> dict:
        device = next(model.parameters()).device
        ids, mask = collate(data, rows, device)
        labels = torch.as_tensor(data.labels[rows], device=device)
        logits = model(ids, mask)
        t = self.temperature
        teacher = self.teacher_logits[torch.as_tensor(rows)].to(device)
        student = logits.float() / t if self.scale_student else logits.float()
        kd = t * t * F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher / t, -1),
                              reduction="batchmean", log_target=True)
        ce = F.cross_entropy(logits.float(), labels)
        lam_t = 1.0 - progress if self.annealing else 0.5
        loss = (1.0 - lam_t) * ce + lam_t * kd
        return {"loss": loss, "logits": logits, "ce": ce.detach(), "kd": kd.detach()}
