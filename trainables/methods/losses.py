"""Training tasks: what one step computes. The loop (trainables/train.py) only backprops `loss`.

Each task is called as `task(model, data, rows, progress, rng)` and returns a dict with
`loss`, the `logits` of `rows` (for data maps and accuracy) and its parts (`ce`, `mix`, `kd`,
`lcl`). A method changes the task, never the loop (docs/contributing.md, Training code); a task that trains a network
of its own besides the model (LCL's weighting network) names it in `trainable_modules`, and the
loop optimises it with the model.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainables.batching import Encoded, collate
from trainables.methods.registry import LCL_SECOND_VIEWS


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
    """Manifold MixUp of each row with its partner(s) (docs/method.md, Saliency and Sim-MixUp).

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
    """Born-again self-distillation with teacher annealing (docs/method.md, Self-distillation).

    loss = (1 - lam_t) CE(student, gold) + lam_t T^2 KL(softmax(z_t / T) || softmax(z_s [/ T])),
    lam_t = 1 - step / total_steps (BAM and CKD), the student unscaled unless scale_student.
    The teacher's logits on the training rows are computed once before training, in eval
    mode, so they are the same every epoch.
    """

    def __init__(self, teacher_logits: np.ndarray, temperature: float, scale_student: bool = False,
                 annealing: bool = True):
        if isinstance(teacher_logits, np.ndarray) and not teacher_logits.flags.writeable:
            teacher_logits = teacher_logits.copy()  # read-only (from Ray's object store): torch cannot share it
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


def positive_pairs(labels: torch.Tensor) -> torch.Tensor:
    """(b, b) mask of the pairs (i, p), p != i, that share a label: anchor i's positives."""
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)


def label_aware_contrastive_loss(features: torch.Tensor, labels: torch.Tensor, label_weights: torch.Tensor,
                                 temperature: float) -> torch.Tensor:
    """Label-aware contrastive loss (LCL; Suresh and Ong 2021, eq. 3 as their code computes it).

    Supervised contrastive loss whose every pair is weighted by how much the anchor's weighting
    network confuses the anchor with the other sample's label. With s_ij = f_i . f_j / tau and
    w_ic the weighting network's softmax for anchor i and label c:

        D_i    = sum_{j != i} w_{i, y_j} exp(s_ij)                  (every other sample, weighted)
        loss_i = -(w_{i, y_i} / |P(i)|) sum_{p in P(i)} (s_ip - log D_i),  P(i) = {p != i : y_p = y_i}

    The positives' weight w_{i, y_i} stands outside the log, as the authors' README says their
    code (and their reported results) have it, not inside as their eq. 3 prints it. The loss is the
    mean over anchors with at least one positive: with a second view of every text in the batch
    (LabelAwareContrastiveTask, as the original's batches) every anchor has one, and the original
    needs no rule (it would divide 0 by 0); without one, an anchor alone with its label is left out.

    Args:
        features: (b, d) L2-normalised sentence vectors.
        labels: (b,) gold labels.
        label_weights: (b, k) rows summing to 1 (the weighting network's softmax).
        temperature: tau (0.3 in the original's config).
    Returns:
        The scalar loss; 0 (still attached to the graph) when no anchor has a positive.
    """
    b = features.shape[0]
    features, label_weights = features.float(), label_weights.float()
    sims = features @ features.T / temperature
    others = ~torch.eye(b, dtype=torch.bool, device=features.device)
    positives = positive_pairs(labels)
    pair_weights = label_weights[:, labels]  # [i, j] = w_{i, y_j}
    # a weight that underflowed to 0 would make log -inf and its gradient NaN
    log_pair_weights = pair_weights.clamp_min(torch.finfo(torch.float32).tiny).log()
    log_denominator = torch.logsumexp((sims + log_pair_weights).masked_fill(~others, -torch.inf), dim=1)
    n_pos = positives.sum(1)
    has_pos = n_pos > 0
    if not has_pos.any():
        return features.sum() * 0.0
    log_prob = sims - log_denominator[:, None]
    own_weight = label_weights.gather(1, labels[:, None]).squeeze(1)  # w_{i, y_i}
    per_anchor = -own_weight * (log_prob * positives).sum(1) / n_pos.clamp(min=1)
    return per_anchor[has_pos].mean()


class LabelAwareContrastiveTask:
    """The Electra+LCL teacher recipe (Suresh and Ong 2021; github.com/varsha33/LCL_loss, train.py).

    Two encoders of the same pretrained model train together with one optimiser:
      - the model: logits from its classification head, and the L2-normalised sentence vector
        before the head (the first token's last hidden state for ELECTRA, as their
        `primary_encoder`) as the contrastive feature;
      - the weighting network (their `weighting_network`, a sequence classifier): its softmax
        over labels weights the pairs of the contrastive loss. It is trained by lambda * its own
        CE, and the LCL gradient reaches it too (their weights are not detached).

        loss = lambda CE(model) + (1 - lambda) LCL(features, weights) + lambda CE(weighting)

    lambda 0.5 and tau 0.3 are their config's. Only the model is kept and evaluated.

    The second view (docs/method.md, LCL): their step is the batch's b texts
    and a WordNet-synonym copy of each, 2b sequences through both networks, CE and LCL on all of
    them, so every anchor has its copy as a positive. `second_view="synonym"` does that with
    `copies` (row i the copy of training row i, trainables/methods/synonyms.py); "dropout" sends
    each text twice instead (two dropout masks, as SimCSE); "none" trains on the batch alone, where
    an anchor without a same-label row adds no LCL term. The share of anchors that had a positive
    is counted over the run (`positive_share`). The logits returned are the b texts' own.
    """

    def __init__(self, weighting: torch.nn.Module, ce_weight: float = 0.5, temperature: float = 0.3,
                 second_view: str = "none", copies: Encoded | None = None):
        if second_view not in LCL_SECOND_VIEWS:
            raise ValueError(f"second_view must be one of {', '.join(LCL_SECOND_VIEWS)}, not {second_view!r}")
        if (second_view == "synonym") != (copies is not None):
            raise ValueError("second_view 'synonym' needs `copies` (the synonym copy of every row), and only it")
        self.weighting, self.ce_weight, self.temperature = weighting, ce_weight, temperature
        self.second_view, self.copies = second_view, copies
        self.trainable_modules = (weighting,)
        self.anchors = self.anchors_with_positive = 0

    @property
    def positive_share(self) -> float:
        """The share of the anchors trained on so far that had at least one positive in their step."""
        return self.anchors_with_positive / self.anchors if self.anchors else float("nan")

    def _sequences(self, data: Encoded, rows: np.ndarray) -> tuple[Encoded, np.ndarray]:
        """The step's sequences: the rows, then (with a second view) each row's second view."""
        if self.second_view == "none":
            return data, rows
        seconds = self.copies if self.second_view == "synonym" else data
        ids = tuple(data.ids[i] for i in rows) + tuple(seconds.ids[i] for i in rows)
        labels = np.concatenate([data.labels[rows], data.labels[rows]])
        return Encoded(ids, labels, data.pad_id), np.arange(2 * len(rows))

    def __call__(self, model, data: Encoded, rows: np.ndarray, progress: float, rng: np.random.Generator) -> dict:
        device = next(model.parameters()).device
        sequences, seq_rows = self._sequences(data, rows)
        ids, mask = collate(sequences, seq_rows, device)
        labels = torch.as_tensor(sequences.labels[seq_rows], device=device)
        self.weighting.train(model.training)
        pooled = model.pooled(ids, mask)
        logits = model.classify(model.head_features(pooled))
        weight_logits = self.weighting(ids, mask)
        lcl = label_aware_contrastive_loss(F.normalize(pooled.float(), dim=-1), labels,
                                           torch.softmax(weight_logits.float(), dim=-1), self.temperature)
        ce = F.cross_entropy(logits.float(), labels)
        weighting_ce = F.cross_entropy(weight_logits.float(), labels)
        lam = self.ce_weight
        loss = lam * ce + (1.0 - lam) * lcl + lam * weighting_ce
        if model.training:
            self.anchors += len(labels)
            self.anchors_with_positive += int(positive_pairs(labels).any(1).sum())
        return {"loss": loss, "logits": logits[: len(rows)], "ce": ce.detach(), "lcl": lcl.detach(),
                "weighting_ce": weighting_ce.detach()}
