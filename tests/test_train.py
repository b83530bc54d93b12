"""The one training loop (trainables/train.py): model selection, annealing progress, batching.

Tasks here are scripted (they set the weights or only record what the loop hands them), so
what the loop does with epochs, steps and rows can be checked exactly, in milliseconds.
"""
from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from tests.tiny_net import TokenTableNet, token_rows
from trainables.batching import Encoded, collate
from trainables.calibration import classification_metrics
from trainables.train import DivergedError, TrainConfig, epoch_batches, pick_device, predict_logits, train


class Recorder:
    """A task that trains nothing: it records each step's rows and progress (loss 0, zero gradients)."""

    def __init__(self):
        self.steps: list[tuple[float, np.ndarray]] = []
        self.modes: list[bool] = []  # model.training at each step

    def __call__(self, model, data, rows, progress, rng) -> dict:
        self.steps.append((progress, np.array(rows)))
        self.modes.append(model.training)
        logits = model(*collate(data, rows))
        return {"loss": 0.0 * logits.sum(), "logits": logits}


# validation labels 0 0 0 1; the logits the scripted task sets in each epoch, and what they score
VAL_LABELS = [0, 0, 0, 1]
EPOCH_LOGITS = [[3.0, 0.0], [0.0, 0.2], [0.0, 3.0]]
# epoch 1 predicts 0 everywhere: macro F1 (6/7 + 0) / 2; epochs 2 and 3 predict 1: (0 + 2/5) / 2.
# Validation loss is lowest in epoch 2 (p = 0.45 / 0.55 against epoch 1's confident miss).
EPOCH_MACRO_F1 = [100 * 3 / 7, 20.0, 20.0]


class ScriptedEpochs(Recorder):
    """Sets the model's output to epoch_logits[epoch] at the start of each epoch (one step per epoch)."""

    def __init__(self, epoch_logits=EPOCH_LOGITS):
        super().__init__()
        self.epoch_logits = epoch_logits

    def __call__(self, model, data, rows, progress, rng) -> dict:
        with torch.no_grad():
            model.out_proj.bias.copy_(torch.tensor(self.epoch_logits[round(progress * len(self.epoch_logits))]))
        return super().__call__(model, data, rows, progress, rng)


@pytest.mark.parametrize("select, best", [("val_macro_f1", 1), ("val_accuracy", 1), ("val_loss", 2), ("last", 3)])
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
    assert TrainConfig().select == "val_macro_f1"  # docs/method.md, Training


def _rows_of_lengths(lengths: np.ndarray) -> Encoded:
    return Encoded(tuple(np.full(n, i % 7) for i, n in enumerate(lengths)), np.zeros(len(lengths), dtype=np.int64), 0)


def test_the_loop_gives_every_row_once_per_epoch_and_anneals_per_step():
    """Length-grouped epochs through train(): each epoch is exactly `rows`, in a new order, and the
    task sees progress = step / total_steps (teacher annealing per optimisation step;
    docs/method.md, Self-distillation)."""
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

    def padding(recorded):
        return sum(int(data.lengths[r].max()) * len(r) - int(data.lengths[r].sum()) for _, r in recorded.steps)

    plain = Recorder()
    train(model, plain, data, None, TrainConfig(epochs=2, batch_size=4, lr=1e-3, select="last"), seed=1, rows=rows)
    assert padding(recorder) < 0.3 * padding(plain)  # the setting reaches the batches


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


def test_a_grouped_epoch_is_hfs_mega_batches_of_its_shuffle_each_longest_first():
    """HF's length grouping, by hand: the epoch's shuffled rows cut into mega-batches of 50 batches,
    each sorted longest first (equal lengths keep their shuffled order) and cut into batches; then
    only the batches' order is shuffled."""
    lengths = np.random.default_rng(0).integers(1, 6, size=420)  # five lengths: many ties
    rows = np.arange(420)
    batches = epoch_batches(rows, lengths, 4, True, np.random.default_rng(7))
    order = rows[np.random.default_rng(7).permutation(420)]  # the same draw the epoch makes first
    expected = []
    for start in range(0, 420, 50 * 4):
        chunk = sorted(order[start : start + 50 * 4], key=lambda r: -lengths[r])  # Python's sort is stable
        expected += [tuple(chunk[i : i + 4]) for i in range(0, len(chunk), 4)]
    assert sorted(tuple(b) for b in batches) == sorted(expected)


# ----------------------------------------------------------------------------- settings


def test_the_default_training_settings_are_the_papers_recipe():
    """Appendix A.2 (docs/method.md, Training): 3 epochs, batch 32, lr 2.5e-5, AdamW weight decay 0.001,
    gradient clip 3.0, a linear schedule without warm-up; no length grouping; a loss above 1e4 has diverged.
    specs/full_paper.yaml relies on these defaults."""
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.grad_clip, cfg.warmup_ratio) == (
        3, 32, 2.5e-5, 0.001, 3.0, 0.0)
    assert (cfg.select, cfg.group_by_length, cfg.max_loss) == ("val_macro_f1", False, 1e4)
    cfg.validate()


@pytest.mark.parametrize("name, at_bound, past_bound", [
    ("epochs", 1, 0), ("batch_size", 1, 0), ("eval_batch_size", 1, 0), ("lr", 1e-9, 0.0), ("lr", 1e-9, -2.5e-5)])
def test_training_settings_at_their_bounds_are_accepted_and_past_them_refused(name, at_bound, past_bound):
    TrainConfig(**{name: at_bound}).validate()
    with pytest.raises(ValueError, match=f"{name} must be"):
        TrainConfig(**{name: past_bound}).validate()


@pytest.mark.parametrize("select", ["val_macro_f1", "val_accuracy", "val_loss", "last"])
def test_the_four_selection_rules_are_accepted_and_no_other(select):
    TrainConfig(select=select).validate()
    with pytest.raises(ValueError, match="select must be"):
        TrainConfig(select="val_acc").validate()


def test_val_accuracy_scores_accuracy_where_macro_f1_disagrees():
    """The Electra+LCL code keeps the epoch of the best validation accuracy; on gold (0, 0, 0, 1)
    predicting all 0 is the more accurate (75 against 50) and the worse macro F1 (42.9 against 50)."""
    from trainables.train import _validation_score

    labels = np.array([0, 0, 0, 1])
    all_zero = np.array([[1.0, 0.0]] * 4)
    mixed = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert _validation_score(all_zero, labels, "val_accuracy") == pytest.approx(75.0)
    assert _validation_score(mixed, labels, "val_accuracy") == pytest.approx(50.0)
    assert _validation_score(all_zero, labels, "val_macro_f1") < _validation_score(mixed, labels, "val_macro_f1")


def test_auto_picks_the_gpu_when_there_is_one_else_the_cpu():
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device() == pick_device("auto")  # the default


def test_bf16_on_the_cpu_trains_in_fp32_without_an_autocast_warning_per_step():
    """bf16 (the default) is a CUDA setting: on the CPU no autocast is entered, so no 'CUDA is not
    available ... Disabling autocast' warning floods the log at every step."""
    model = TokenTableNet(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(model, Recorder(), token_rows([0, 1]), None, TrainConfig(epochs=1, batch_size=1, select="last"), seed=0)


# ----------------------------------------------------------------------------- the optimiser


class ConstantGradient(Recorder):
    """loss = the sum of the output bias: a constant gradient of 1, so AdamW moves each bias entry by
    lr_t / (1 + eps) per step (m_hat / sqrt(v_hat) = 1, and a bias is not decayed). Records the bias
    before each step."""

    def __init__(self):
        super().__init__()
        self.bias: list[np.ndarray] = []

    def __call__(self, model, data, rows, progress, rng) -> dict:
        self.bias.append(model.out_proj.bias.detach().numpy().copy())
        out = super().__call__(model, data, rows, progress, rng)
        return {"loss": model.out_proj.bias.sum(), "logits": out["logits"]}


@pytest.mark.parametrize("n_rows, epochs, warmup_ratio, factors", [
    (5, 2, 0.0, [1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]),  # 3 steps an epoch: linear decay to 0 after the last
    (5, 2, 0.5, [0, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3]),  # 3 warm-up steps from 0, then the decay
    (5, 2, 0.25, [0, 1, 4 / 5, 3 / 5, 2 / 5, 1 / 5]),  # int(0.25 * 6) = 1 warm-up step
    (4, 1, 0.5, [0, 1]),  # one warm-up step, one decay step
])
def test_the_learning_rate_warms_up_then_decays_linearly_per_step(n_rows, epochs, warmup_ratio, factors):
    model = TokenTableNet(np.zeros((n_rows, 1)), np.zeros((2, 1)), np.zeros(2))
    task = ConstantGradient()
    cfg = TrainConfig(epochs=epochs, batch_size=2, lr=0.1, warmup_ratio=warmup_ratio, select="last")
    fit = train(model, task, token_rows([0] * n_rows), None, cfg, seed=0)
    bias = np.array(task.bias + [fit.model.out_proj.bias.detach().numpy()])
    steps = -np.diff(bias[:, 0])  # how far each step moved the bias
    np.testing.assert_allclose(steps, 0.1 * np.array(factors), rtol=1e-5, atol=1e-7)


class NormedNet(nn.Module):
    """An embedding, three layer norms named as Hugging Face models name them, an output layer; every
    parameter 0.5 and in the graph."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(3, 2)
        self.LayerNorm, self.layer_norm, self.norm = nn.LayerNorm(2), nn.LayerNorm(2), nn.LayerNorm(2)
        self.out_proj = nn.Linear(2, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.fill_(0.5)

    def forward(self, input_ids, attention_mask):
        return self.out_proj(self.norm(self.layer_norm(self.LayerNorm(self.embed(input_ids[:, 0])))))


class WithExtraNetwork(Recorder):
    """A task training a network of its own beside the model (as LCL's weighting network)."""

    def __init__(self):
        super().__init__()
        self.extra = nn.Linear(2, 2)
        with torch.no_grad():
            for p in self.extra.parameters():
                p.fill_(0.5)
        self.trainable_modules = (self.extra,)

    def __call__(self, model, data, rows, progress, rng) -> dict:
        out = super().__call__(model, data, rows, progress, rng)
        return {"loss": out["loss"] + 0.0 * self.extra(out["logits"]).sum(), "logits": out["logits"]}


def test_weights_decay_and_biases_and_norms_do_not():
    """AdamW's decoupled decay with zero gradients: one step at lr 0.1, decay 0.5 scales a decayed weight
    by 0.95; biases and LayerNorm weights (any of the names HF models use) keep 0.5, as does nothing a
    task trains beside the model but its weights."""
    model, task = NormedNet(), WithExtraNetwork()
    cfg = TrainConfig(epochs=1, batch_size=3, lr=0.1, weight_decay=0.5, select="last")
    train(model, task, token_rows([0, 1, 2]), None, cfg, seed=0)
    params = {**dict(model.named_parameters()), **{f"extra.{n}": p for n, p in task.extra.named_parameters()}}
    decayed = {n for n, p in params.items() if torch.allclose(p, torch.full_like(p, 0.475))}
    kept = {n for n, p in params.items() if torch.equal(p, torch.full_like(p, 0.5))}
    assert decayed == {"embed.weight", "out_proj.weight", "extra.weight"}
    assert kept == set(params) - decayed


class ExtraAtFirstStep(WithExtraNetwork):
    """Uses its network at the first step only (a constant gradient of 1 on it), then not at all."""

    def __call__(self, model, data, rows, progress, rng) -> dict:
        self.after_first = self.extra.weight.detach().clone()
        out = Recorder.__call__(self, model, data, rows, progress, rng)
        extra = self.extra.weight.sum() if progress == 0 else 0.0
        return {"loss": out["loss"] + extra, "logits": out["logits"]}


def test_a_parameter_a_step_does_not_use_is_left_alone_by_that_step():
    """Gradients are reset to None, not zero: AdamW skips a parameter without one, so its momentum from
    earlier steps does not keep moving it (nor does decay)."""
    task = ExtraAtFirstStep()
    model = TokenTableNet(np.zeros((3, 1)), np.zeros((2, 1)), np.zeros(2))
    train(model, task, token_rows([0, 1, 0]), None, TrainConfig(epochs=1, batch_size=1, lr=0.1, select="last"), seed=0)
    assert len(task.steps) == 3 and not torch.equal(task.after_first, torch.full((2, 2), 0.5))  # the first step moved it
    assert torch.equal(task.extra.weight, task.after_first)


class FixedGradients(Recorder):
    """Gradient [3, 4] (norm 5) on the model's table and [[0, 4], [0, 0]] (norm 4) on a network of the task's own."""

    def __init__(self):
        super().__init__()
        self.extra = nn.Linear(2, 2, bias=False)
        self.trainable_modules = (self.extra,)

    def __call__(self, model, data, rows, progress, rng) -> dict:
        out = super().__call__(model, data, rows, progress, rng)
        loss = (model.table * torch.tensor([[3.0, 4.0]])).sum() + (self.extra.weight * torch.tensor([[0.0, 4.0], [0.0, 0.0]])).sum()
        return {"loss": loss, "logits": out["logits"]}


def test_gradients_are_clipped_to_the_norm_each_network_on_its_own():
    """Clip 4.5: the model's gradient (norm 5) is scaled to norm 4.5, the task's network's (norm 4) is left
    alone; clipped together (norm 6.4) both would shrink. The last step's gradients stay on the parameters."""
    model, task = TokenTableNet(np.zeros((1, 2)), np.zeros((2, 2)), np.zeros(2)), FixedGradients()
    train(model, task, token_rows([0]), None, TrainConfig(epochs=1, batch_size=1, grad_clip=4.5, select="last"), seed=0)
    np.testing.assert_allclose(model.table.grad.numpy(), [[2.7, 3.6]], rtol=1e-5)
    np.testing.assert_allclose(task.extra.weight.grad.numpy(), [[0.0, 4.0], [0.0, 0.0]], rtol=1e-6)


# ----------------------------------------------------------------------------- the loop


@pytest.mark.parametrize("select", ["val_macro_f1", "val_accuracy", "val_loss"])
def test_of_equally_good_epochs_the_first_is_kept(select):
    val = token_rows(VAL_LABELS)
    model = TokenTableNet(np.zeros((4, 1)), np.zeros((2, 1)), np.zeros(2))
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3, weight_decay=0.0, select=select)
    fit = train(model, ScriptedEpochs([[0.0, 3.0], [3.0, 0.0], [3.0, 0.0]]), val, val, cfg, seed=0)
    assert fit.best_epoch == 2


class ConstantLoss(Recorder):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def __call__(self, model, data, rows, progress, rng) -> dict:
        out = super().__call__(model, data, rows, progress, rng)
        return {"loss": out["loss"] + self.value, "logits": out["logits"]}


@pytest.mark.parametrize("loss, diverged", [(5.0, False), (5.5, True), (math.inf, True), (math.nan, True)])
def test_a_loss_above_max_loss_or_not_finite_fails_the_run(loss, diverged):
    model = TokenTableNet(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2))
    cfg = TrainConfig(epochs=1, batch_size=2, lr=1e-3, select="last", max_loss=5.0)
    if diverged:
        with pytest.raises(DivergedError, match="diverged"):
            train(model, ConstantLoss(loss), token_rows([0, 1]), None, cfg, seed=0)
    else:
        assert train(model, ConstantLoss(loss), token_rows([0, 1]), None, cfg, seed=0).history[0]["train_loss"] == 5.0


class StepLosses(Recorder):
    """Loss 1, 2, 3, ... at the loop's steps 0, 1, 2, ..."""

    def __call__(self, model, data, rows, progress, rng) -> dict:
        out = super().__call__(model, data, rows, progress, rng)
        return {"loss": out["loss"] + float(len(self.steps)), "logits": out["logits"]}


def test_the_history_has_each_epochs_mean_training_loss():
    model = TokenTableNet(np.zeros((5, 1)), np.zeros((2, 1)), np.zeros(2))
    cfg = TrainConfig(epochs=2, batch_size=2, lr=1e-3, select="last")
    fit = train(model, StepLosses(), token_rows([0] * 5), None, cfg, seed=0)  # 3 steps an epoch: 1 2 3, 4 5 6
    assert fit.history == [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 5.0}]


class ScriptedBias(Recorder):
    """Sets the output bias to biases[epoch] before each step (any number of steps an epoch)."""

    def __init__(self, biases):
        super().__init__()
        self.biases = biases

    def __call__(self, model, data, rows, progress, rng) -> dict:
        with torch.no_grad():
            model.out_proj.bias.copy_(torch.tensor(self.biases[int(progress * len(self.biases) + 1e-9)]))
        return super().__call__(model, data, rows, progress, rng)


def test_training_dynamics_are_each_rows_gold_probability_and_hit_per_epoch():
    """The data map's inputs (allenai/cartography): p(gold) and correctness of each training row in each
    epoch from the training-mode logits, and the last logits; rows outside `rows` stay 0."""
    t = np.array([[0.1], [0.2], [0.3], [0.4], [0.5]])
    labels = np.array([0, 1, 1, 0, 1])
    biases = [[1.0, 0.0], [0.0, 2.0]]  # epoch 1 predicts class 0 everywhere, epoch 2 class 1
    model = TokenTableNet(t, np.array([[1.0], [-1.0]]), np.zeros(2))
    cfg = TrainConfig(epochs=2, batch_size=2, lr=1e-3, weight_decay=0.0, select="last")
    fit = train(model, ScriptedBias(biases), token_rows(labels), None, cfg, seed=0, rows=np.arange(4),
                record_dynamics=True)
    logits = [np.tanh(t) * [1.0, -1.0] + b for b in biases]  # (5, 2) per epoch
    p = [np.exp(z) / np.exp(z).sum(1, keepdims=True) for z in logits]
    gold = np.array([[pe[i, labels[i]] if i < 4 else 0.0 for i in range(5)] for pe in p])
    assert fit.gold_probs.dtype == np.float32 and fit.gold_probs.shape == (2, 5)
    np.testing.assert_allclose(fit.gold_probs, gold, rtol=1e-6)
    assert fit.correct.tolist() == [[True, False, False, True, False], [False, True, True, False, False]]
    np.testing.assert_allclose(fit.last_logits, np.vstack([logits[1][:4], [[0.0, 0.0]]]), rtol=1e-6)
    assert fit.last_logits.dtype == np.float32
    assert fit.correct.dtype == bool
    plain = train(model, ScriptedBias(biases), token_rows(labels), None, cfg, seed=0)
    assert plain.gold_probs is None and plain.correct is None and plain.last_logits is None


class Draws(Recorder):
    """Records one draw from each generator a task may use: Python's, numpy's, torch's and the loop's rng."""

    def __call__(self, model, data, rows, progress, rng) -> dict:
        self.draws = (random.random(), float(np.random.random()), float(torch.rand(1)), float(rng.random()))
        return super().__call__(model, data, rows, progress, rng)


def _draws(seed: int) -> tuple[float, ...]:
    task = Draws()
    model = TokenTableNet(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2))
    train(model, task, token_rows([0, 1]), None, TrainConfig(epochs=1, batch_size=2, select="last"), seed=seed)
    return task.draws


def test_the_seed_fixes_every_generator_a_task_may_draw_from():
    a = _draws(5)
    assert _draws(5) == a
    other = _draws(5 + 64)
    assert all(x != y for x, y in zip(a, other))
    _draws(2**32 + 5)  # seeds past numpy's 32-bit range are accepted


class DropoutNet(TokenTableNet):
    """TokenTableNet with dropout on its features; records the TF32 switches at each forward."""

    def __init__(self, *args):
        super().__init__(*args)
        self.dropout = nn.Dropout(0.5)
        self.tf32: list[tuple[bool, bool]] = []

    def forward(self, input_ids, attention_mask):
        self.tf32.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return self.classify(self.dropout(self.features(input_ids, attention_mask)))


def test_the_loop_trains_in_training_mode_and_predicts_in_fp32_eval_mode():
    """Dropout on in training even for a model handed over in eval mode; off in predict_logits, which
    computes fp32 logits with TF32 off and no autocast (even inside one) and puts back what it changed."""
    rng = np.random.default_rng(0)
    model = DropoutNet(rng.normal(size=(6, 3)), rng.normal(size=(2, 3)) * 0.37, rng.normal(size=2))
    data = token_rows([0, 1, 0, 1, 0, 1])
    model.eval()
    recorder = Recorder()
    train(model, recorder, data, None, TrainConfig(epochs=1, batch_size=4, lr=1e-3, select="last"), seed=0)
    assert recorder.modes == [True, True]
    with torch.no_grad():
        expected = model.classify(model.table).numpy()  # every row once, no dropout, fp32
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        model.tf32.clear()
        for was_training in (True, False):
            model.train(was_training)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = predict_logits(model, data, batch_size=4)
            assert logits.dtype == np.float32 and model.training == was_training
            np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)
        assert model.tf32 == [(False, False)] * 4  # 2 batches, twice
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


class EvalBatchSizes(TokenTableNet):
    """Records the size of each batch it scores in eval mode."""

    def __init__(self, *args):
        super().__init__(*args)
        self.eval_batches: list[int] = []

    def forward(self, input_ids, attention_mask):
        if not self.training:
            self.eval_batches.append(int(input_ids.shape[0]))
        return super().forward(input_ids, attention_mask)


def test_validation_is_scored_in_batches_of_eval_batch_size():
    """eval_batch_size bounds the memory of the validation pass after each epoch."""
    model = EvalBatchSizes(np.zeros((4, 1)), np.zeros((2, 1)), np.zeros(2))
    val = token_rows(VAL_LABELS)
    train(model, Recorder(), val, val, TrainConfig(epochs=2, batch_size=4, eval_batch_size=3), seed=0)
    assert model.eval_batches == [3, 1, 3, 1]
