"""The one training loop, and the one evaluation pass. No Ray, no MLflow: plain PyTorch.

Appendix A.2 and docs/method.md, Training: AdamW (weight decay 0.001), gradient clip 3.0 (norm),
linear schedule, model selection on the epoch with the best validation macro F1 (a setting:
the CKD code selects on validation loss). Every method plugs in as a task that returns
`loss` (trainables/methods/losses.py); the loop reads top to bottom like nanoGPT's.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from trainables.batching import Encoded, collate

_logger = logging.getLogger(__name__)

# what picks the epoch a run keeps: the Electra+LCL code keeps the best validation accuracy
SELECT = ("val_macro_f1", "val_accuracy", "val_loss", "last")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training run (table 7 and appendix A.2 for the paper's)."""

    epochs: int = 3  # passes over the training set
    batch_size: int = 32  # training examples per optimiser step
    lr: float = 2.5e-5  # AdamW peak learning rate, decayed linearly to 0
    weight_decay: float = 0.001  # AdamW weight decay (appendix A.2)
    grad_clip: float = 3.0  # gradients clipped to this global norm (appendix A.2)
    warmup_ratio: float = 0.0  # share of the steps the learning rate warms up over; the paper has none
    eval_batch_size: int = 128  # rows per forward pass when evaluating
    select: str = "val_macro_f1"  # which epoch's model is kept: best validation macro F1 or accuracy, lowest validation loss, or the last
    bf16: bool = True  # training forward/backward under bf16 autocast on CUDA; evaluation is always fp32
    group_by_length: bool = False  # batches of similar length (less padding); still shuffled
    max_loss: float = 1e4  # a loss above this (or NaN) fails the run: it has diverged

    def validate(self) -> None:
        if self.select not in SELECT:
            raise ValueError(f"select must be {', '.join(SELECT[:-1])} or {SELECT[-1]}, not {self.select!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


class DivergedError(RuntimeError):
    """The loss became NaN/inf or exceeded max_loss: this run failed, others go on."""


@dataclass
class TrainResult:
    """The selected model and what the run saw on the way."""

    model: torch.nn.Module
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    gold_probs: np.ndarray | None = None  # (epochs, n_rows) p(gold) per epoch, for data maps
    correct: np.ndarray | None = None  # (epochs, n_rows)
    last_logits: np.ndarray | None = None  # (n_rows, k) latest training-mode logits


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def full_precision():
    """fp32 matmuls and convolutions on CUDA (no TF32), restored afterwards.

    Every logit that feeds an ECE, the temperature search, temperature scaling or a
    distillation target is computed in full fp32: bf16 (or TF32) rounding is about 0.03 on a
    logit of 6, the size of the paper's ECE differences (issue 10).
    """
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@torch.no_grad()
def predict_logits(model: torch.nn.Module, data: Encoded, batch_size: int = 128) -> np.ndarray:
    """fp32 logits of every row in `data`, in row order (batches formed by length, then restored).

    Never under autocast, whatever the training precision: these logits feed ECE, the
    temperature search and distillation targets (`full_precision`).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = np.argsort(data.lengths, kind="stable")
    out = np.empty((len(data), model.out_proj.out_features), dtype=np.float32)
    with full_precision(), torch.autocast(device.type, enabled=False):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = collate(data, rows, device)
            out[rows] = model(ids, mask).float().cpu().numpy()
    model.train(was_training)
    return out


def epoch_batches(rows: np.ndarray, lengths: np.ndarray, batch_size: int, group_by_length: bool,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches: a random order, optionally grouped by length as HF's Trainer does.

    With grouping, each mega-batch of 50 batches is sorted by length and cut into batches, and
    the batches are shuffled, so padding shrinks while every epoch still sees a new order.
    """
    order = rows[rng.permutation(len(rows))]
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    mega = 50 * batch_size
    batches = []
    for start in range(0, len(order), mega):
        chunk = order[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _validation_score(logits: np.ndarray, labels: np.ndarray, select: str) -> float:
    """Higher is better."""
    if select == "val_loss":
        return -float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
    from trainables.calibration import classification_metrics

    return classification_metrics(logits, labels)["accuracy" if select == "val_accuracy" else "macro_f1"]


def train(
    model: torch.nn.Module,
    task,
    data: Encoded,
    validation: Encoded | None,
    cfg: TrainConfig,
    *,
    seed: int,
    rows: np.ndarray | None = None,
    record_dynamics: bool = False,
) -> TrainResult:
    """Train `model` with `task` on `rows` of `data` (all rows by default); keep the best epoch.

    Args:
        task: callable(model, data, batch_rows, progress, rng) -> dict with `loss` and `logits`.
        data: every row a task may touch (training rows and any MixUp partner rows).
        validation: rows scored after each epoch to select the best one; None with select="last".
        rows: the rows that make an epoch; partners may come from outside them.
        record_dynamics: keep p(gold) per row and epoch from the training-mode forward
            (as allenai/cartography does) for a data map.
    """
    set_seed(seed)
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    lengths = data.lengths
    steps_per_epoch = math.ceil(len(rows) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    # a task may train a network of its own beside the model (LCL's weighting network): one
    # optimiser and schedule for all, each network clipped on its own (as the LCL code does)
    modules = [model, *getattr(task, "trainable_modules", ())]
    named = [(n, p) for m in modules for n, p in m.named_parameters()]
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    warmup = int(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total_steps - s) / max(1, total_steps - warmup))
    )

    gold_probs = np.zeros((cfg.epochs, len(data)), dtype=np.float32) if record_dynamics else None
    correct = np.zeros((cfg.epochs, len(data)), dtype=bool) if record_dynamics else None
    last_logits = None
    best_score, best_state, best_epoch, history = -math.inf, None, -1, []
    step = 0
    for epoch in range(cfg.epochs):
        model.train()
        losses = []
        for batch in epoch_batches(rows, lengths, cfg.batch_size, cfg.group_by_length, rng):
            with autocast(device, cfg.bf16):
                out = task(model, data, batch, step / total_steps, rng)
            loss = out["loss"]
            if not torch.isfinite(loss) or loss.item() > cfg.max_loss:
                raise DivergedError(f"loss {loss.item():.4g} at epoch {epoch + 1}, step {step}: the run diverged "
                                    f"(lower lr, currently {cfg.lr:g}, or check the data)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for module in modules:
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(loss.item())
            if record_dynamics:
                logits = out["logits"].detach().float()
                probs = torch.softmax(logits, -1).cpu().numpy()
                gold = data.labels[batch]
                gold_probs[epoch, batch] = probs[np.arange(len(batch)), gold]
                correct[epoch, batch] = probs.argmax(-1) == gold
                if last_logits is None:
                    last_logits = np.zeros((len(data), probs.shape[1]), dtype=np.float32)
                last_logits[batch] = logits.cpu().numpy()

        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
        if cfg.select != "last":
            val_logits = predict_logits(model, validation, cfg.eval_batch_size)
            record["val_score"] = score = _validation_score(val_logits, validation.labels, cfg.select)
            if score > best_score:
                best_score, best_epoch = score, epoch + 1
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        history.append(record)
        _logger.info("epoch %d: %s", epoch + 1, record)

    if cfg.select == "last":
        best_epoch = cfg.epochs
    else:
        model.load_state_dict(best_state)
    return TrainResult(model, best_epoch, history, gold_probs, correct, last_logits)
