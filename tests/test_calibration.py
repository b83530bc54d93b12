"""trainables.calibration against torchmetrics, a brute-force reference of docs/method.md's edge
rule, hand-worked cases, and a brute-force temperature search (issue 4)."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from tests.conftest import from_object_store
from trainables.calibration import (
    BinStats,
    CalibrationInputError,
    calibration_bins,
    calibration_report,
    classification_metrics,
    expected_calibration_error,
    fit_temperature,
    softmax,
    temperature_grid,
    top1_ece,
)

# ----------------------------------------------------------------------------- references


def ref_bin(c: float, n_bins: int) -> int:
    """docs/method.md's ECE rule with exact comparisons: [k/n, (k+1)/n), last bin closed."""
    b = max(k for k in range(n_bins + 1) if k / n_bins <= c)
    return min(b, n_bins - 1)


def ref_binned(confs: list[float], hits: list[float], bins: list[int], n_bins: int) -> float:
    n = len(confs)
    total = 0.0
    for b in range(n_bins):
        members = [i for i in range(n) if bins[i] == b]
        if members:
            acc = sum(hits[i] for i in members) / len(members)
            conf = sum(confs[i] for i in members) / len(members)
            total += len(members) / n * abs(acc - conf)
    return total


def ref_mass_bins(confs: list[float], n_bins: int) -> list[int]:
    order = sorted(range(len(confs)), key=lambda i: confs[i])  # stable
    n = len(confs)
    sizes = [n // n_bins + (1 if b < n % n_bins else 0) for b in range(n_bins)]
    bins = [0] * n
    rank = 0
    for b, size in enumerate(sizes):
        for _ in range(size):
            bins[order[rank]] = b
            rank += 1
    return bins


def ref_ece(probs, labels, n_bins: int = 10, binning: str = "equal_width", classwise: bool = False) -> float:
    rows = [[float(v) for v in row] for row in np.asarray(probs)]
    ys = [int(v) for v in np.asarray(labels)]

    def bins_of(confs):
        if binning == "equal_width":
            return [ref_bin(c, n_bins) for c in confs]
        return ref_mass_bins(confs, n_bins)

    if classwise:
        k = len(rows[0])
        per_class = []
        for j in range(k):
            confs = [r[j] for r in rows]
            hits = [1.0 if y == j else 0.0 for y in ys]
            per_class.append(ref_binned(confs, hits, bins_of(confs), n_bins))
        return sum(per_class) / k
    confs = [max(r) for r in rows]
    hits = [1.0 if r.index(max(r)) == y else 0.0 for r, y in zip(rows, ys)]
    return ref_binned(confs, hits, bins_of(confs), n_bins)


def ref_softmax(row: list[float], t: float) -> list[float]:
    x = [v / t for v in row]
    m = max(x)
    e = [math.exp(v - m) for v in x]
    s = sum(e)
    return [v / s for v in e]


def random_case(rng: np.random.Generator, n: int, k: int, scale: float, dtype=np.float64):
    logits = rng.normal(size=(n, k)) * scale
    labels = rng.integers(0, k, size=n)
    return logits, labels, softmax(logits).astype(dtype)


# ----------------------------------------------------------------------------- torchmetrics


SHAPES = [(1, 2), (5, 3), (64, 2), (257, 6), (1000, 8), (3000, 28), (40, 100)]


@pytest.mark.parametrize("n,k", SHAPES)
@pytest.mark.parametrize("scale", [0.5, 3.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_agrees_with_torchmetrics_off_edges(n, k, scale, dtype):
    rng = np.random.default_rng(n * 1000 + k)
    logits, labels, probs = random_case(rng, n, k, scale, dtype)
    # Keep only rows whose confidence is clear of every edge (1.0 included) in float32, the
    # precision torchmetrics bins in: that is where docs/method.md, ECE, asks for 1e-6 agreement.
    conf = probs.max(axis=1).astype(np.float64)
    keep = np.abs(conf[:, None] - np.arange(11)[None, :] / 10).min(axis=1) > 1e-5
    assert keep.any()
    probs, labels = probs[keep], labels[keep]
    metric = MulticlassCalibrationError(num_classes=k, n_bins=10, norm="l1")
    expected = float(metric(torch.as_tensor(probs), torch.as_tensor(labels)))
    ours = expected_calibration_error(probs, labels, n_bins=10)
    assert abs(ours - expected) < 1e-6
    assert math.isclose(ours, ref_ece(probs, labels), abs_tol=1e-12)


def test_agrees_with_torchmetrics_15_bins():
    rng = np.random.default_rng(15)
    _, labels, probs = random_case(rng, 2000, 5, 2.0)
    metric = MulticlassCalibrationError(num_classes=5, n_bins=15, norm="l1")
    expected = float(metric(torch.as_tensor(probs), torch.as_tensor(labels)))
    assert abs(expected_calibration_error(probs, labels, n_bins=15) - expected) < 1e-6


# ----------------------------------------------------------------------------- brute force, edges


def edge_case_probs(rng: np.random.Generator, n: int, k: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose confidence is exactly k/n_bins (as a float64), exactly 1.0, or random."""
    probs = np.zeros((n, k))
    for i in range(n):
        kind = i % 3
        if kind == 0:  # exactly on an edge: max = b/n_bins, the rest share the remainder
            b = int(rng.integers(math.ceil(n_bins / k), n_bins + 1))
            top = b / n_bins
            rest = np.full(k - 1, (1 - top) / max(k - 1, 1))
            row = np.concatenate([[top], rest]) if k > 1 else np.array([1.0])
            if k > 1 and rest.max() > top:
                row = np.full(k, 1 / k)
        elif kind == 1:  # exactly 1.0
            row = np.zeros(k)
            row[0] = 1.0
        else:
            row = softmax(rng.normal(size=(1, k)) * 2)[0]
        probs[i] = rng.permutation(row)
    return probs, rng.integers(0, k, size=n)


@pytest.mark.parametrize("n,k", [(1, 1), (9, 1), (30, 2), (61, 3), (200, 4), (45, 10)])
@pytest.mark.parametrize("n_bins", [1, 3, 10, 15])
def test_matches_brute_force_on_edges(n, k, n_bins):
    rng = np.random.default_rng(7 * n + k + n_bins)
    probs, labels = edge_case_probs(rng, n, k, n_bins)
    for binning in ("equal_width", "equal_mass"):
        for classwise in (False, True):
            ours = expected_calibration_error(probs, labels, n_bins, binning, classwise)
            assert math.isclose(ours, ref_ece(probs, labels, n_bins, binning, classwise), abs_tol=1e-12), (
                binning,
                classwise,
            )


def test_edge_values_land_in_bin_k():
    # Confidence b/10 lands in bin b (b < 10); 1.0 lands in the last bin.
    probs = np.array([[b / 10, 1 - b / 10] for b in range(5, 11)])
    stats = calibration_bins(probs, np.zeros(len(probs), dtype=int))
    assert stats.counts.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2]
    assert stats.edges.tolist() == [k / 10 for k in range(11)]  # k / 10 in float64, as reported
    # In float32 the edges are float32(k/10): float32(0.7) lands in bin 7, not 6.
    probs32 = np.array([[0.7, 0.3]], dtype=np.float32)
    assert calibration_bins(probs32, [0]).counts.tolist()[7] == 1


def test_random_shapes_brute_force_all_variants():
    rng = np.random.default_rng(3)
    for n, k in [(1, 3), (17, 2), (150, 7)]:
        _, labels, probs = random_case(rng, n, k, 2.0)
        for binning in ("equal_width", "equal_mass"):
            for classwise in (False, True):
                ours = expected_calibration_error(probs, labels, 10, binning, classwise)
                assert math.isclose(ours, ref_ece(probs, labels, 10, binning, classwise), abs_tol=1e-12)


# ----------------------------------------------------------------------------- hand-worked


def test_hand_worked_one_per_bin():
    # conf 0.9 right, 0.8 wrong, 0.6 right, 0.7 right, each alone in its bin:
    # (0.1 + 0.8 + 0.4 + 0.3) / 4 = 0.4
    probs = [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]]
    labels = [0, 1, 0, 1]
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4, abs=1e-15)
    stats = calibration_bins(probs, labels)
    assert stats.counts.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert stats.accuracy[6:].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert np.isnan(stats.accuracy[:6]).all() and np.isnan(stats.confidence[:6]).all()


def test_hand_worked_shared_bin():
    # 0.62 right and 0.68 wrong share bin 6: acc 0.5, conf 0.65 -> 2/3 * 0.15 = 0.1;
    # 0.95 right alone in bin 9 -> 1/3 * 0.05.
    probs = [[0.62, 0.38], [0.32, 0.68], [0.95, 0.05]]
    labels = [0, 0, 0]
    assert expected_calibration_error(probs, labels) == pytest.approx(0.1 + 0.05 / 3, abs=1e-15)
    stats = calibration_bins(probs, labels)
    assert stats.counts[6] == 2 and stats.accuracy[6] == 0.5
    assert stats.confidence[6] == pytest.approx(0.65)


def test_hand_worked_tie_edge_and_single_class():
    # [0.5, 0.5]: the prediction is the first class (argmax), wrong; conf 0.5 in bin 5.
    assert expected_calibration_error([[0.5, 0.5]], [1]) == pytest.approx(0.5)
    assert calibration_bins([[0.5, 0.5]], [1]).counts[5] == 1
    # Confidence 1.0 and right: in the last bin, ECE 0.
    assert expected_calibration_error([[1.0, 0.0]], [0]) == 0.0
    assert calibration_bins([[1.0, 0.0]], [0]).counts[-1] == 1
    # One class: always confident, always right.
    ones = np.ones((5, 1))
    assert expected_calibration_error(ones, np.zeros(5, dtype=int)) == 0.0
    assert expected_calibration_error(ones, np.zeros(5, dtype=int), classwise=True) == 0.0


def test_hand_worked_equal_mass_and_classwise():
    # Equal mass, 2 bins of 2: {0.6 right, 0.7 wrong} -> 1/2*|0.5-0.65|; {0.8, 0.9 right} -> 1/2*0.15.
    probs = [[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2]]
    labels = [0, 0, 1, 0]
    assert expected_calibration_error(probs, labels, n_bins=2, binning="equal_mass") == pytest.approx(0.15)
    stats = calibration_bins(probs, labels, n_bins=2, binning="equal_mass")
    assert stats.counts.tolist() == [2, 2]
    assert stats.edges.tolist() == [0.6, 0.8, 0.9]
    # Classwise, 2 bins: class 0 p=[0.7, 0.4], y=[1, 1] -> 0.3/2 + 0.6/2 = 0.45;
    # class 1 p=[0.3, 0.6], y=[0, 0] -> 0.3/2 + 0.6/2 = 0.45; mean 0.45.
    assert expected_calibration_error([[0.7, 0.3], [0.4, 0.6]], [0, 0], n_bins=2, classwise=True) == pytest.approx(
        0.45
    )


def test_equal_mass_fewer_samples_than_bins():
    stats = calibration_bins([[0.9, 0.1], [0.3, 0.7]], [0, 0], n_bins=5, binning="equal_mass")
    assert stats.counts.tolist() == [1, 1, 0, 0, 0] and stats.counts.dtype == np.int64
    assert stats.edges[:2].tolist() == [0.7, 0.9]  # a bin of one sample starts at it
    assert np.isnan(stats.edges[2:5]).all() and stats.edges[-1] == 0.9


def test_bin_stats_consistent_and_json():
    rng = np.random.default_rng(11)
    _, labels, probs = random_case(rng, 500, 4, 1.5)
    for binning in ("equal_width", "equal_mass"):
        stats = calibration_bins(probs, labels, n_bins=10, binning=binning)
        assert isinstance(stats, BinStats)
        assert stats.counts.sum() == 500
        assert stats.ece == pytest.approx(expected_calibration_error(probs, labels, binning=binning), abs=1e-15)
        full = ~np.isnan(stats.accuracy)
        ece = np.sum(stats.counts[full] / 500 * np.abs(stats.accuracy[full] - stats.confidence[full]))
        assert ece == pytest.approx(stats.ece, abs=1e-12)
        json.dumps(stats.to_dict(), allow_nan=False)
    with pytest.raises(AttributeError):
        stats.ece = 0.0  # frozen


def test_bin_stats_by_hand_and_as_json():
    """Four predictions in 4 equal-width bins: one bin with one sample, one empty. The JSON form is
    what the reliability diagrams and the MLflow artifacts read (nan -> None)."""
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])  # top-1 conf .9 .8 .7 .6
    labels = np.array([0, 1, 1, 1])  # hits: 1 0 1 1
    stats = calibration_bins(probs, labels, n_bins=4)
    assert stats.to_dict() == {
        "binning": "equal_width", "n_bins": 4, "edges": [0.0, 0.25, 0.5, 0.75, 1.0], "counts": [0, 0, 2, 2],
        "accuracy": [None, None, 1.0, 0.5], "confidence": [None, None, pytest.approx(0.65), pytest.approx(0.85)],
        "ece": pytest.approx(0.5 * 0.35 + 0.5 * 0.35)}
    one = calibration_bins(probs[:1], labels[:1], n_bins=4).to_dict()  # a bin holding a single sample
    assert one["counts"] == [0, 0, 0, 1] and one["accuracy"][3] == 1.0 and one["confidence"][3] == pytest.approx(0.9)
    assert calibration_bins(probs, labels, n_bins=4, binning="equal_mass").to_dict()["binning"] == "equal_mass"


def test_tensor_inputs_and_float_outputs():
    rng = np.random.default_rng(5)
    logits, labels, probs = random_case(rng, 100, 3, 1.0)
    a = expected_calibration_error(torch.as_tensor(probs), torch.as_tensor(labels))
    assert isinstance(a, float) and a == expected_calibration_error(probs, labels)
    assert isinstance(softmax(torch.as_tensor(logits)), np.ndarray)
    np.testing.assert_allclose(softmax(logits, 2.0), torch.softmax(torch.as_tensor(logits) / 2.0, 1).numpy(), atol=1e-15)


# ----------------------------------------------------------------------------- temperature


def test_temperature_grid_exact():
    grid = temperature_grid()
    assert len(grid) == 500
    assert grid[0] == 0.01 and grid[-1] == 5.0
    assert all(t == round(k / 100, 2) for t, k in zip(grid, range(1, 501)))
    assert temperature_grid((0.5, 2.0, 0.5)).tolist() == [0.5, 1.0, 1.5, 2.0]


def brute_force_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, list[float]]:
    """Pure Python: every T of 0.01..5.00, softmax, reference ECE; ties (1e-12) to the smallest."""
    rows = [list(map(float, r)) for r in logits]
    temps = [round(k * 0.01, 10) for k in range(1, 501)]
    eces = [ref_ece([ref_softmax(r, t) for r in rows], labels) for t in temps]
    best = min(eces)
    return next(t for t, e in zip(temps, eces) if e <= best + 1e-12), eces


@pytest.mark.parametrize("seed,n,k,true_t", [(0, 120, 4, 2.0), (1, 80, 3, 0.5), (2, 60, 6, 1.0)])
def test_fit_temperature_equals_brute_force(seed, n, k, true_t):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 3
    p = softmax(logits, true_t)
    labels = np.array([rng.choice(k, p=row) for row in p])
    t, temps, eces = fit_temperature(logits, labels, return_curve=True)
    t_ref, eces_ref = brute_force_temperature(logits, labels)
    assert t == t_ref
    assert len(temps) == 500 and len(eces) == 500
    np.testing.assert_allclose(eces, eces_ref, atol=1e-12, rtol=0)
    assert fit_temperature(logits, labels) == t


def test_fit_temperature_matches_loop_of_public_functions():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(300, 5)) * 2.5
    labels = rng.integers(0, 5, size=300)
    t, temps, eces = fit_temperature(logits, labels, return_curve=True)
    loop = np.array([expected_calibration_error(softmax(logits, tt), labels) for tt in temps])
    assert np.array_equal(loop, eces)  # same arithmetic, bit for bit on CPU
    assert t == temps[int(np.argmin(loop))]


def test_fit_temperature_ties_go_to_smallest():
    # Saturated and right for every T: ECE 0 everywhere -> the smallest T.
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    assert fit_temperature(logits, [0, 1]) == 0.01
    assert fit_temperature(np.zeros((4, 1)), np.zeros(4, dtype=int)) == 0.01
    assert fit_temperature(logits, [0, 1], grid=(0.5, 2.0, 0.5)) == 0.5


def test_fit_temperature_torch_cpu_and_chunking(monkeypatch):
    import trainables.calibration as cal

    rng = np.random.default_rng(4)
    logits = rng.normal(size=(300, 4)) * 4
    labels = rng.integers(0, 4, size=300)
    t_np, _, e_np = fit_temperature(logits, labels, return_curve=True)
    t_t, _, e_t = fit_temperature(torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels), return_curve=True)
    assert torch.cuda.is_available() or not torch.as_tensor(logits).is_cuda
    # float32 logits are widened to float64, so the curves agree to float32 input precision.
    np.testing.assert_allclose(e_np, e_t, atol=1e-5)
    monkeypatch.setattr(cal, "_GRID_CHUNK_ELEMENTS", 7 * 300 * 4)  # 7 temperatures per chunk
    t_c, _, e_c = fit_temperature(logits, labels, return_curve=True)
    assert t_c == t_np and np.array_equal(e_c, e_np)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_fit_temperature_on_gpu():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(2000, 6)) * 3
    labels = rng.integers(0, 6, size=2000)
    t_cpu, _, e_cpu = fit_temperature(logits, labels, return_curve=True)
    t_gpu, _, e_gpu = fit_temperature(torch.as_tensor(logits).cuda(), torch.as_tensor(labels).cuda(), return_curve=True)
    np.testing.assert_allclose(e_gpu, e_cpu, atol=1e-12)
    assert t_gpu == t_cpu


# ----------------------------------------------------------------------------- F1 and the report


def test_classification_metrics_hand_worked():
    probs = [[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]]  # preds 0 0 1 1
    labels = [0, 1, 1, 1]
    m = classification_metrics(probs, labels)
    assert set(m) == {"macro_f1", "weighted_f1", "accuracy"}
    assert m["accuracy"] == pytest.approx(75.0)
    assert m["macro_f1"] == pytest.approx(100 * (2 / 3 + 0.8) / 2)
    assert m["weighted_f1"] == pytest.approx(100 * (2 / 3 + 3 * 0.8) / 4)


def test_calibration_report():
    rng = np.random.default_rng(12)
    logits = rng.normal(size=(400, 5)) * 3
    labels = rng.integers(0, 5, size=400)
    r1 = calibration_report(logits, labels)
    r2 = calibration_report(logits, labels, temperature=2.5)
    assert set(r1) == {"macro_f1", "weighted_f1", "accuracy", "ece", "ece15", "ece_equal_mass", "ece_classwise"}
    for key in ("macro_f1", "weighted_f1", "accuracy"):
        assert r1[key] == r2[key]  # F1 is unchanged by T
    p = softmax(logits, 2.5)
    assert r2["ece"] == pytest.approx(100 * expected_calibration_error(p, labels), abs=1e-12)
    assert r2["ece15"] == pytest.approx(100 * expected_calibration_error(p, labels, n_bins=15), abs=1e-12)
    assert r2["ece_equal_mass"] == pytest.approx(100 * ref_ece(p, labels, 10, "equal_mass"), abs=1e-10)
    assert r2["ece_classwise"] == pytest.approx(100 * ref_ece(p, labels, 10, classwise=True), abs=1e-10)


# ----------------------------------------------------------------------------- bad input

GOOD_LOGITS = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
GOOD_PROBS = softmax(GOOD_LOGITS)
GOOD_LABELS = np.array([0, 1])

PROB_FUNCS = [
    lambda p, y: expected_calibration_error(p, y),
    lambda p, y: expected_calibration_error(p, y, classwise=True),
    lambda p, y: calibration_bins(p, y),
]
LOGIT_FUNCS = [
    lambda z, y: fit_temperature(z, y),
    lambda z, y: calibration_report(z, y),
    lambda z, y: classification_metrics(z, y),
]


def _with(a: np.ndarray, i: int, j: int, v: float) -> np.ndarray:
    a = a.copy()
    a[i, j] = v
    return a


@pytest.mark.parametrize("func", LOGIT_FUNCS)
@pytest.mark.parametrize(
    "value,words", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")]
)
def test_non_finite_logits(func, value, words):
    with pytest.raises(CalibrationInputError, match=words):
        func(_with(GOOD_LOGITS, 1, 2, value), GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match="row 1, column 2"):
        softmax(_with(GOOD_LOGITS, 1, 2, value))


@pytest.mark.parametrize("func", PROB_FUNCS)
def test_bad_probs(func):
    with pytest.raises(CalibrationInputError, match="sum to 1"):
        func(GOOD_PROBS * 0.9, GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match=r"\[0, 1\]"):
        func(GOOD_LOGITS, GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match="NaN"):
        func(_with(GOOD_PROBS, 0, 0, np.nan), GOOD_LABELS)


@pytest.mark.parametrize("func", PROB_FUNCS + LOGIT_FUNCS)
def test_bad_labels_and_shapes(func):
    x = GOOD_PROBS
    with pytest.raises(CalibrationInputError, match="out of range"):
        func(x, [0, 3])
    with pytest.raises(CalibrationInputError, match="out of range"):
        func(x, [-1, 0])
    with pytest.raises(CalibrationInputError, match="length mismatch: 2 rows of scores but 3 labels"):
        func(x, [0, 1, 1])
    with pytest.raises(CalibrationInputError, match="integer"):
        func(x, [0.5, 1.0])
    with pytest.raises(CalibrationInputError, match="1-D"):
        func(x, [[0], [1]])
    with pytest.raises(CalibrationInputError, match="2-D"):
        func(x[0], [0])
    with pytest.raises(CalibrationInputError, match="empty"):
        func(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_bad_settings():
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(GOOD_PROBS, GOOD_LABELS, n_bins=0)
    with pytest.raises(ValueError, match="binning"):
        expected_calibration_error(GOOD_PROBS, GOOD_LABELS, binning="quantile")
    with pytest.raises(ValueError, match="temperature"):
        softmax(GOOD_LOGITS, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        calibration_report(GOOD_LOGITS, GOOD_LABELS, temperature=float("nan"))
    with pytest.raises(ValueError, match="grid"):
        fit_temperature(GOOD_LOGITS, GOOD_LABELS, grid=(0.0, 5.0, 0.01))
    with pytest.raises(ValueError, match="grid"):
        fit_temperature(GOOD_LOGITS, GOOD_LABELS, grid=(2.0, 1.0, 0.01))
    # Integral float labels are accepted (e.g. labels stored as float in a CSV).
    assert expected_calibration_error(GOOD_PROBS, np.array([0.0, 1.0])) == expected_calibration_error(
        GOOD_PROBS, GOOD_LABELS
    )


def test_fit_temperature_near_tied_logits_match_loop():
    # Rows whose two top logits differ in the last bits: z / T can round them to a tie, and
    # then argmax of the probabilities (the loop) takes the first; the search must agree.
    rng = np.random.default_rng(21)
    base = rng.normal(size=(60, 3)) * 2
    top = base.max(axis=1)
    base[:, 0] = np.nextafter(top, -np.inf)  # one ulp below the (later-index) maximum
    base[:20, 0] = top[:20]  # exact ties: the first index wins everywhere
    labels = rng.integers(0, 3, size=60)
    labels[::2] = 0
    t, temps, eces = fit_temperature(base, labels, return_curve=True)
    loop = np.array([expected_calibration_error(softmax(base, tt), labels) for tt in temps])
    assert np.array_equal(loop, eces)
    assert t == temps[int(np.argmin(loop))]


@pytest.mark.parametrize("runner_up, top, temperature", [
    (np.nextafter(1000.0, 0.0), 1000.0, 1e-5),  # z / T rounds the two to one number: a tie
    (1.3413921880292815e19, 1.3413921880292817e19, 1357383.0),  # the same at a large T and large logits
    (-5.708949561347864e-15, 0.0, 197949.53),  # exp(-gap / T) rounds to 1: a tie
])
def test_near_tied_logits_are_recomputed_on_any_grid(runner_up, top, temperature):
    """The rows whose top two logits may tie after scaling are found for grids far from the default
    (tiny or huge temperatures, huge logits): the search still agrees with the loop. The runner-up comes
    first, so at the tie argmax of the probabilities takes it, not argmax of the logits; an exact tie
    beside it shares its bin, so the right and the wrong argmax give different ECEs (0.5 and 0)."""
    logits = np.array([[runner_up, top], [1.0, 1.0]])
    labels = np.array([0, 0])
    probs = softmax(logits, temperature)
    assert probs[0, 0] == probs[0, 1]  # the case is a real tie at this T
    _, _, eces = fit_temperature(logits, labels, grid=(temperature, temperature, temperature), return_curve=True)
    assert eces.tolist() == [expected_calibration_error(probs, labels)] == [0.5]


# ----------------------------------------------------------------------------- the LLM rows' ECE, settings


def test_top1_ece_by_hand_from_stated_confidences():
    """The LLM rows state one confidence each (trainables/llm/score.py): 0 and 1 are valid confidences,
    10 equal-width bins by default. 0.6 (right) and 0.65 (wrong) share bin 6: |1 - 1.25| / 4; 0.0 wrong
    and 1.0 right are calibrated. Two equal-mass bins: {0.0, 0.6} and {0.65, 1.0}."""
    conf, correct = [0.0, 0.6, 0.65, 1.0], [0, 1, 0, 1]
    assert top1_ece(conf, correct) == pytest.approx(0.25 / 4, abs=1e-15)
    assert top1_ece(np.array(conf), np.array(correct, dtype=bool), n_bins=2, binning="equal_mass") == pytest.approx(
        (0.4 + 0.65) / 4, abs=1e-15)
    with pytest.raises(CalibrationInputError, match="non-empty and of one length"):
        top1_ece([], [])
    with pytest.raises(CalibrationInputError, match="non-empty and of one length"):
        top1_ece([0.5, 0.6], [1])
    with pytest.raises(CalibrationInputError, match=r"in \[0, 1\]"):
        top1_ece([0.5, -0.01], [1, 0])
    with pytest.raises(CalibrationInputError, match="confidence could not be read as an array"):
        top1_ece([[0.5], [0.5, 0.5]], [1, 0])
    with pytest.raises(CalibrationInputError, match="correct could not be read as an array"):
        top1_ece([0.5, 0.5], [[1], [0, 1]])


def test_top1_ece_bins_float32_confidences_as_the_ece_of_their_probabilities_does():
    """Edges in the confidences' own dtype (module docstring): float32(0.7) is on the float32 edge 7/10, so
    it does not share bin 6 with 0.65, in `top1_ece` as in `expected_calibration_error`."""
    probs32 = np.array([[0.7, 0.3], [0.65, 0.35]], dtype=np.float32)
    labels = np.array([0, 1])
    ece = expected_calibration_error(probs32, labels)
    assert ece == pytest.approx((0.3 + 0.65) / 2, abs=1e-7)
    assert top1_ece(probs32.max(1), probs32.argmax(1) == labels) == ece


def test_calibration_report_uses_its_n_bins_for_every_variant_but_ece15():
    """Default T = 1; `n_bins` for the equal-width, equal-mass and classwise ECE, 15 for ece15. Rows below
    0.7 confidence are right, the rest wrong: bins on both sides of the diagonal, so every binning differs."""
    rng = np.random.default_rng(13)
    logits = rng.normal(size=(300, 4)) * 3
    p = softmax(logits)
    labels = np.where(p.max(1) < 0.7, p.argmax(1), (p.argmax(1) + 1) % 4)
    report = calibration_report(logits, labels, n_bins=5)
    expected = {"ece": ref_ece(p, labels, 5), "ece15": ref_ece(p, labels, 15),
                "ece_equal_mass": ref_ece(p, labels, 5, "equal_mass"), "ece_classwise": ref_ece(p, labels, 5, classwise=True)}
    assert {k: report[k] for k in expected} == pytest.approx({k: 100 * v for k, v in expected.items()}, abs=1e-10)
    others = [ref_ece(p, labels, 10), ref_ece(p, labels, 5, "equal_mass"), ref_ece(softmax(logits, 2.0), labels, 5)]
    assert min(abs(expected["ece"] - o) for o in others) > 1e-3  # the bins, the binning and T each matter here


@pytest.mark.parametrize("labels", [np.array([True, False]), np.array([0 + 1j, 1 + 0j]), np.array([np.inf, 0.0]),
                                    np.array([np.nan, 0.0])])
def test_labels_that_are_not_class_indices_are_refused(labels):
    for func in PROB_FUNCS:
        with pytest.raises(CalibrationInputError, match="integer class indices"):
            func(GOOD_PROBS, labels)


def test_bins_are_a_positive_integer_and_scores_a_readable_non_empty_matrix():
    for bad in (True, 2.0, 0, -3):
        with pytest.raises(ValueError, match="n_bins must be a positive integer"):
            expected_calibration_error(GOOD_PROBS, GOOD_LABELS, n_bins=bad)
    assert expected_calibration_error(GOOD_PROBS, GOOD_LABELS, n_bins=np.int64(3)) == expected_calibration_error(
        GOOD_PROBS, GOOD_LABELS, n_bins=3)
    with pytest.raises(CalibrationInputError, match="empty"):
        expected_calibration_error(np.zeros((2, 0)), GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match="^probs could not be read as an array"):
        expected_calibration_error([[0.5, 0.5], [1.0]], GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match="^labels could not be read as an array"):
        expected_calibration_error(GOOD_PROBS, [[0], [1, 2]])


def test_integer_scores_and_tensors_that_carry_gradients_are_read_exactly():
    # 2**24 + 1 is not a float32: integer logits are read in float64, as the difference of 1 they are
    np.testing.assert_array_equal(softmax(np.array([[2**24 + 1, 2**24]])), softmax([[1.0, 0.0]]))
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]], requires_grad=True)  # a model's output, say
    assert fit_temperature(logits, [0, 1], grid=(0.5, 2.0, 0.5)) == fit_temperature(
        logits.detach().numpy(), [0, 1], grid=(0.5, 2.0, 0.5))
    np.testing.assert_array_equal(softmax(logits), softmax(logits.detach().numpy()))
    # float32 logits: float64 probabilities of the same (exactly widened) numbers
    logits32 = np.array([[0.1, 0.7, -2.3], [3.3, 3.3001, 0.0]], dtype=np.float32)
    probs = softmax(logits32)
    assert probs.dtype == np.float64
    np.testing.assert_array_equal(probs, softmax(logits32.astype(np.float64)))


def test_bad_scores_are_refused_saying_where_and_how_bad():
    two_nan = _with(_with(GOOD_LOGITS, 0, 1, np.nan), 1, 2, np.inf)
    with pytest.raises(CalibrationInputError, match=r"^logits contains 2 non-finite value\(s\) \(NaN; first at row 0, column 1\)"):
        softmax(two_nan)
    with pytest.raises(CalibrationInputError, match=r"^logits contains 2 non-finite value\(s\)"):
        fit_temperature(two_nan, GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match=r"^logits_or_probs contains 2 non-finite value\(s\)"):
        classification_metrics(two_nan, GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match=r"^logits contains 1 non-finite value\(s\) \(infinite; first at row 1, column 2\)"):
        softmax(_with(GOOD_LOGITS, 1, 2, -np.inf))
    with pytest.raises(CalibrationInputError, match=r"row 1 sums to 0\.9 "):
        calibration_bins(np.vstack([GOOD_PROBS[0], GOOD_PROBS[1] * 0.9]), GOOD_LABELS)
    with pytest.raises(CalibrationInputError, match=r"probs contains 1 non-finite value\(s\) \(NaN; first at row 0, column 0\)"):
        expected_calibration_error(_with(GOOD_PROBS, 0, 0, np.nan), GOOD_LABELS)
    # above 1 by more than float noise, with no negative entry beside it
    with pytest.raises(CalibrationInputError, match=r"must lie in \[0, 1\]; found values in \[0, 1\.00005\]"):
        expected_calibration_error([[1.00005, 0.0], [0.5, 0.5]], GOOD_LABELS)


def test_empty_bins_are_nan_without_a_warning():
    """A reliability diagram's empty bins: nan accuracy and confidence, and no numpy RuntimeWarning in
    the user's log for the 0 / 0 behind them."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = calibration_bins([[0.9, 0.1]], [0], n_bins=4)
    assert np.isnan(stats.accuracy[:3]).all() and np.isnan(stats.confidence[:3]).all()
    assert stats.accuracy[3] == 1.0 and stats.confidence[3] == 0.9


def test_float32_probabilities_are_summed_in_float64():
    """float32 [1, 1e-4] sums to 1 + 0.99999997e-4 (within the 1e-4 tolerance); summed in float32 it would
    be 1 + 1.00017e-4 and refused."""
    probs = np.array([[1.0, 1e-4], [0.5, 0.5]], dtype=np.float32)
    assert expected_calibration_error(probs, [0, 1]) == pytest.approx(0.25)


@pytest.mark.parametrize("grid", [(0.0, 5.0, 0.01), (-0.5, 5.0, 0.01), (0.01, 5.0, 0.0), (0.01, 5.0, -0.01), (2.0, 1.0, 0.01),
                                  (math.nan, 5.0, 0.01), (0.01, math.inf, 0.01)])
def test_a_grid_needs_a_positive_start_at_most_its_stop_and_a_positive_step(grid):
    with pytest.raises(ValueError, match=r"grid needs 0 < start <= stop and step > 0"):
        temperature_grid(grid)


@pytest.mark.parametrize("step", [1e-11, 1.5e-10, 1 / 3])
def test_a_grid_step_finer_than_the_grids_10_decimals_is_refused(step):
    """Temperatures are k * step rounded to 10 decimals: a finer step would give wrong (or zero) temperatures."""
    with pytest.raises(ValueError, match=r"grid step .* has more than 10 decimals"):
        temperature_grid((step, 3 * step, step))
    assert temperature_grid((1e-10, 3e-10, 1e-10)).tolist() == [1e-10, 2e-10, 3e-10]


def test_a_grid_of_one_temperature_is_that_temperature():
    assert temperature_grid((0.5, 0.5, 0.5)).tolist() == [0.5]
    t, temps, eces = fit_temperature(GOOD_LOGITS, GOOD_LABELS, grid=(1.5, 1.5, 0.5), return_curve=True)
    assert t == 1.5 and temps.tolist() == [1.5]
    assert eces.tolist() == [expected_calibration_error(softmax(GOOD_LOGITS, 1.5), GOOD_LABELS)]



def test_read_only_arrays_as_ray_hands_them_over(warnings_as_errors):
    """Logits and labels from Ray's object store are read-only: every entry point takes them without
    torch's "NumPy array is not writable" warning, with the numbers of writable arrays, and
    leaves them untouched."""
    rng = np.random.default_rng(11)
    logits, labels = (rng.normal(size=(90, 5)) * 2).astype(np.float32), rng.integers(0, 5, 90)
    probs = softmax(logits)
    arrays = {"z": logits, "y": labels, "p": probs, "conf": probs.max(1), "hit": probs.argmax(1) == labels}
    stored = {name: from_object_store(a) for name, a in arrays.items()}
    calls = [lambda a: fit_temperature(a["z"], a["y"], return_curve=True), lambda a: softmax(a["z"], 1.7),
             lambda a: expected_calibration_error(a["p"], a["y"], classwise=True),
             lambda a: calibration_bins(a["p"], a["y"], binning="equal_mass").to_dict(),
             lambda a: top1_ece(a["conf"], a["hit"]), lambda a: classification_metrics(a["z"], a["y"]),
             lambda a: calibration_report(a["z"], a["y"], temperature=1.3)]
    for call in calls:
        np.testing.assert_equal(call(stored), call(arrays))
    for name, a in arrays.items():
        assert np.array_equal(stored[name], a)
