"""The one training loop (trainables/train.py): model selection, annealing progress, batching.

Tasks here are scripted (they set the weights or only record what the loop hands them), so
what the loop does with epochs, steps and rows can be checked exactly, in milliseconds.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_net import TokenTableNet, token_rows
from trainables.batching import Encoded, collate
from trainables.calibration import classification_metrics
from trainables.train import TrainConfig, epoch_batches, predict_logits, train


class Recorder:
    """A task that trains nothing: it records each step's rows and progress (loss 0, zero gradients)."""

    def __init__(self):
        self.steps: list[tuple[float, np.ndarray]] = []

    def __call__(self, model, data, rows, progress, rng) -> dict:
        self.steps.append((progress, np.array(rows)))
        logits = model(*collate(data, rows))
        return {"loss": 0.0 * logits.sum(), "logits": logits}


# validation labels 0 0 0 1; the logits the scripted task sets in each epoch, and what they score
VAL_LABELS = [0, 0, 0, 1]
EPOCH_LOGITS = [[3.0, 0.0], [0.0, 0.2], [0.0, 3.0]]
# epoch 1 predicts 0 everywhere: macro F1 (6/7 + 0) / 2; epochs 2 and 3 predict 1: (0 + 2/5) / 2.
# Validation loss is lowest in epoch 2 (p = 0.45 / 0.55 against epoch 1's confident miss).
EPOCH_MACRO_F1 = [100 * 3 / 7, 20.0, 20.0]


class ScriptedEpochs(Recorder):
    """Sets the model's output to EPOCH_LOGITS[epoch] at the start of each epoch (one step per epoch)."""

    def __call__(self, model, data, rows, progress, rng) -> dict:
        with torch.no_grad():
            model.out_proj.bias.copy_(torch.tensor(EPOCH_LOGITS[round(progress * len(EPOCH_LOGITS))]))
        return super().__call__(model, data, rows, progress, rng)


@pytest.mark.parametrize("select, best", [("val_macro_f1", 1), ("val_loss", 2), ("last", 3)])
def test_the_best_epoch_is_chosen_on_validation_macro_f1(select, best):
    """The last epoch is not the best: the model returned is the selected epoch's, weights and score."""
    val = token_rows(VAL_LABELS)
    model = TokenTableNet(np.zeros((4, 1)), np.zeros((2, 1)), np.zeros(2))  # logits = out_proj.bias
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3, weight_decay=0.0, select=select)
    fit = train(model, ScriptedEpochs(), val, val if select != "last" else None, cfg, seed=0)
    assert fit.best_epoch == best
    assert fit.model.out_proj.bias.tolist() == pytest.approx(EPOCH_LOGITS[best - 1])
    if select == "val_macro_f1":
        assert [h["val_score"] for h in fit.history] == pytest.approx(EPOCH_MACRO_F1)
        score = classification_metrics(predict_logits(fit.model, val), val.labels)["macro_f1"]
        assert score == pytest.approx(EPOCH_MACRO_F1[0])
    assert TrainConfig().select == "val_macro_f1"  # METHOD.md: the paper's default


def _rows_of_lengths(lengths: np.ndarray) -> Encoded:
    return Encoded(tuple(np.full(n, i % 7) for i, n in enumerate(lengths)), np.zeros(len(lengths), dtype=np.int64), 0)


def test_the_loop_gives_every_row_once_per_epoch_and_anneals_per_step():
    """Length-grouped epochs through train(): each epoch is exactly `rows`, in a new order, and the
    task sees progress = step / total_steps (teacher annealing per optimisation step, METHOD.md)."""
    rng = np.random.default_rng(0)
    data = _rows_of_lengths(rng.integers(1, 40, size=300))
    rows = np.sort(rng.choice(300, size=230, replace=False))  # e.g. the EA subsets: not every row
    model = TokenTableNet(np.zeros((7, 1)), np.zeros((2, 1)), np.zeros(2))
    recorder = Recorder()
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, select="last", group_by_length=True)
    train(model, recorder, data, None, cfg, seed=1, rows=rows)
    steps = len(recorder.steps)
    assert steps == 2 * 58  # ceil(230 / 4) per epoch
    assert [p for p, _ in recorder.steps] == pytest.approx([i / steps for i in range(steps)])
    epochs = [np.concatenate([r for _, r in recorder.steps[e * 58:(e + 1) * 58]]) for e in range(2)]
    for order in epochs:
        assert len(order) == len(rows) and np.array_equal(np.sort(order), rows)
    assert not np.array_equal(epochs[0], epochs[1])


def test_length_grouped_batches_cover_every_row_once_with_little_padding():
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 60, size=500)
    rows = np.sort(rng.choice(500, size=333, replace=False))
    epochs = [epoch_batches(rows, lengths, 4, True, rng) for _ in range(2)]
    for batches in epochs:
        assert all(1 <= len(b) <= 4 for b in batches)
        assert np.array_equal(np.sort(np.concatenate(batches)), rows)  # every row, exactly once
        # shuffled batches: not in the sorted order of the 50-batch mega-batches
        widths = [lengths[b].max() for b in batches[:50]]
        assert widths != sorted(widths, reverse=True)
    assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))

    def padding(batches):
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    plain = epoch_batches(rows, lengths, 4, False, rng)
    assert padding(epochs[0]) < 0.2 * padding(plain)  # grouping is what it is for
