"""Training's device and precision rules, on the CPU here and on a GPU where there is one.

What only a GPU shows (bf16 autocast in training, TF32 switched off for every logit that feeds an
ECE) is skipped on CPU-only machines; `bench/gpu_mutants.py` runs these tests on a lent GPU
machine against mutations of the lines they guard (bench/RESULTS.md, docs/testing.md).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_net import TokenTableNet, token_rows
from trainables.methods.losses import CrossEntropyTask
from trainables.train import TrainConfig, autocast, full_precision, pick_device, predict_logits, train

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")


def tiny_net(seed: int = 0) -> TokenTableNet:
    rng = np.random.default_rng(seed)
    return TokenTableNet(rng.normal(size=(12, 5)), rng.normal(size=(3, 5)), rng.normal(size=3))


class RecordingTask:
    """Cross-entropy, remembering the dtype of the logits each training step computed."""

    def __init__(self):
        self.ce, self.dtypes = CrossEntropyTask(), []

    def __call__(self, model, data, rows, progress, rng):
        out = self.ce(model, data, rows, progress, rng)
        self.dtypes.append(out["logits"].dtype)
        return out


def test_auto_is_the_gpu_where_there_is_one_and_the_cpu_elsewhere():
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")


def test_the_cpu_never_autocasts():
    x, w = torch.randn(4, 8), torch.randn(8, 3)
    with autocast(torch.device("cpu"), True):
        assert (x @ w).dtype == torch.float32


def test_full_precision_turns_tf32_off_and_restores_what_was_set():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with full_precision():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@needs_cuda
def test_autocast_on_a_gpu_is_bf16_only_when_asked():
    x, w = torch.randn(4, 8, device="cuda"), torch.randn(8, 3, device="cuda")
    with autocast(torch.device("cuda"), True):
        assert (x @ w).dtype == torch.bfloat16
    with autocast(torch.device("cuda"), False):
        assert (x @ w).dtype == torch.float32


@needs_cuda
@pytest.mark.parametrize("bf16", [True, False])
def test_a_gpu_trains_in_the_precision_asked_and_evaluates_in_fp32(bf16):
    """Training steps under bf16 autocast (or not), with TF32 on globally as many setups have it;
    the logits that feed ECE still equal a strict fp32 forward of the same weights."""
    rows = token_rows([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    net, task = tiny_net().cuda(), RecordingTask()
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        train(net, task, rows, None, TrainConfig(epochs=2, batch_size=4, lr=1e-2, select="last", bf16=bf16), seed=0)
        logits = predict_logits(net, rows)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    assert set(task.dtypes) == {torch.bfloat16 if bf16 else torch.float32} and len(task.dtypes) == 6
    cpu = net.cpu()
    with torch.no_grad():
        strict = cpu(torch.arange(12)[:, None], torch.ones(12, 1, dtype=torch.long)).numpy()
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, strict, rtol=1e-6, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("binning", ["equal_width", "equal_mass"])
def test_calibration_of_gpu_tensors_equals_the_cpus(binning):
    """ECE (top-1 and classwise) and the reliability bins computed where the tensors are, on a GPU,
    equal the CPU's (up to the last bit of CUDA's atomic adds)."""
    from trainables.calibration import calibration_bins, expected_calibration_error

    rng = np.random.default_rng(3)
    probs = torch.softmax(torch.as_tensor(rng.normal(size=(700, 6)) * 3), -1)
    labels = torch.as_tensor(rng.integers(0, 6, 700))
    for classwise in (False, True):
        gpu = expected_calibration_error(probs.cuda(), labels.cuda(), 10, binning, classwise)
        assert gpu == pytest.approx(expected_calibration_error(probs, labels, 10, binning, classwise), abs=1e-12)
    gpu, cpu = calibration_bins(probs.cuda(), labels.cuda(), 10, binning), calibration_bins(probs, labels, 10, binning)
    np.testing.assert_array_equal(gpu.counts, cpu.counts)
    for name in ("edges", "accuracy", "confidence"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=0, atol=1e-12)
    assert gpu.ece == pytest.approx(cpu.ece, abs=1e-12)
