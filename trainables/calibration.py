"""Calibration metrics, temperature search and F1: the numbers this project is about.

Everything here follows docs/method.md, Metrics:

- ECE is top-1 (confidence = the largest probability, correctness = argmax equals the label),
  ``ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` with standard accuracy per bin (not the
  CKD code's per-bin macro F1), 10 equal-width bins by default, returned as a FRACTION
  (the report multiplies by 100).
- Edge rule: bins are ``[lo, hi)`` with the last one closed, the Caragea-lineage and netcal
  rule. The edges are ``k / n_bins`` computed by one correctly rounded division in the
  confidences' own dtype, and a confidence ``c`` goes to the largest ``b`` with
  ``edge_b <= c`` (``torch.bucketize(right=True) - 1``), clamped to the last bin; so a
  confidence exactly equal to ``k / n_bins`` lands in bin ``k`` and 1.0 lands in the last
  bin. torchmetrics' ``MulticlassCalibrationError`` uses the same ``[lo, hi)`` rule but puts
  1.0 in an extra slot of its own (and its float32 ``linspace`` edges may differ from
  ``k / n_bins`` by one ulp), so the two agree exactly wherever no confidence sits on an edge.
- ``fit_temperature`` is CSD's temperature search (docs/method.md, Temperature scaling): the T in
  0.01, 0.02, ..., 5.00 that minimises ECE of ``softmax(logits / T)``, ties to the smallest T,
  evaluated for the whole grid at once in torch on the logits' device.
- F1 and accuracy come from scikit-learn, in percent (docs/method.md, Metrics).

Inputs may be numpy arrays, torch tensors (any device) or nested lists; outputs are Python
floats or numpy arrays. Bad data raises `CalibrationInputError` naming the problem.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

__all__ = [
    "BinStats",
    "CalibrationInputError",
    "calibration_bins",
    "calibration_report",
    "classification_metrics",
    "expected_calibration_error",
    "fit_temperature",
    "softmax",
    "temperature_grid",
    "top1_ece",
]

Binning = Literal["equal_width", "equal_mass"]
_BINNINGS = ("equal_width", "equal_mass")
# Rows of probabilities must sum to 1 within this much: float32 softmax over a few thousand
# classes is off by ~1e-6, a forgotten softmax or a slice of the classes by far more.
_PROB_SUM_ATOL = 1e-4
# ECE values closer than this are a tie for `fit_temperature` (floating-point noise from
# summation order, e.g. CUDA atomics, must not decide which T wins; docs/method.md: ties -> smallest T).
_TIE_ATOL = 1e-12
# Upper bound on elements of one (temperatures, k, n) block in the vectorised search:
# 2**18 float64 values (2 MiB) stay in cache. Single-threaded on the 2-vCPU dev VM, 5,000 x 8
# x 500 took 128 ms at 2**18, 147 ms at 2**20, 328 ms at 2**24. (That VM's second vCPU gives
# torch no speed-up and ~7 ms of sync per parallel op, so there every chunk size is slow with
# 2 intra-op threads; see bench/fit_temperature.py --threads.)
_GRID_CHUNK_ELEMENTS = 1 << 18


class CalibrationInputError(ValueError):
    """Bad logits, probabilities or labels; the message says which and why."""


@dataclass(frozen=True, eq=False)
class BinStats:
    """Per-bin statistics behind an ECE value (what a reliability diagram draws).

    Attributes:
        edges: Bin edges, shape (n_bins + 1,). Equal width: ``k / n_bins``. Equal mass: the
            smallest confidence of each bin, then the largest confidence overall (nan for
            bins left empty when there are fewer samples than bins).
        counts: Samples per bin, int64, shape (n_bins,).
        accuracy: Fraction correct per bin; nan for an empty bin.
        confidence: Mean top-1 probability per bin; nan for an empty bin.
        ece: Expected calibration error, a fraction.
        binning: ``"equal_width"`` or ``"equal_mass"``.
    """

    edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray
    ece: float
    binning: str = "equal_width"

    @property
    def n_bins(self) -> int:
        return int(self.counts.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (nan becomes None)."""
        return {
            "binning": self.binning,
            "n_bins": self.n_bins,
            "edges": _json_list(self.edges),
            "counts": [int(c) for c in self.counts],
            "accuracy": _json_list(self.accuracy),
            "confidence": _json_list(self.confidence),
            "ece": float(self.ece),
        }


def _json_list(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in np.asarray(values).ravel()]


# ----------------------------------------------------------------------------- input checks


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        array = np.asarray(x)
        # torch cannot share a read-only buffer (Ray's object store, a memory map) and warns: copy only those
        return torch.as_tensor(array if array.flags.writeable else array.copy())
    except (TypeError, ValueError) as err:
        raise CalibrationInputError(f"{name} could not be read as an array: {err}") from err


def _check_matrix(x: Any, name: str) -> torch.Tensor:
    """A 2-D, non-empty, finite floating tensor (n, k)."""
    t = _to_tensor(x, name)
    if t.dim() != 2:
        raise CalibrationInputError(f"{name} must be 2-D (n_samples, n_classes); got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise CalibrationInputError(f"{name} is empty: shape {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        t = t.to(torch.float64)
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = (~finite).nonzero()[0].tolist()
        kind = "NaN" if bool(torch.isnan(t).any()) else "infinite"
        n_bad = int((~finite).sum())
        raise CalibrationInputError(
            f"{name} contains {n_bad} non-finite value(s) ({kind}; first at row {bad[0]}, column {bad[1]})"
        )
    return t


def _check_probs(probs: Any) -> torch.Tensor:
    p = _check_matrix(probs, "probs")
    lo, hi = float(p.min()), float(p.max())
    if lo < 0.0 or hi > 1.0:
        raise CalibrationInputError(
            f"probs must lie in [0, 1]; found values in [{lo:.6g}, {hi:.6g}] (logits? use softmax() first)"
        )
    sums = p.to(torch.float64).sum(dim=1)
    off = (sums - 1.0).abs()
    if bool((off > _PROB_SUM_ATOL).any()):
        row = int(off.argmax())
        raise CalibrationInputError(
            f"probs rows must sum to 1 (within {_PROB_SUM_ATOL}); row {row} sums to {float(sums[row]):.6g}"
            " (logits? use softmax() first)"
        )
    return p


def _check_labels(labels: Any, n: int, k: int, device: torch.device) -> torch.Tensor:
    y = _to_tensor(labels, "labels")
    if y.dim() != 1:
        raise CalibrationInputError(f"labels must be 1-D; got shape {tuple(y.shape)}")
    if y.shape[0] != n:
        raise CalibrationInputError(f"length mismatch: {n} rows of scores but {y.shape[0]} labels")
    if y.dtype == torch.bool or y.is_complex():
        raise CalibrationInputError(f"labels must be integer class indices; got dtype {y.dtype}")
    if torch.is_floating_point(y):
        if not bool(torch.isfinite(y).all()) or not bool((y == y.round()).all()):
            raise CalibrationInputError("labels must be integer class indices; got non-integral values")
    y = y.to(device=device, dtype=torch.long)
    if n and (int(y.min()) < 0 or int(y.max()) >= k):
        raise CalibrationInputError(
            f"labels out of range: need 0 <= label < {k} (n_classes), found min {int(y.min())}, max {int(y.max())}"
        )
    return y


def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    return int(n_bins)


def _check_binning(binning: str) -> str:
    if binning not in _BINNINGS:
        raise ValueError(f"unknown binning {binning!r}; use one of {', '.join(_BINNINGS)}")
    return binning


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not math.isfinite(t) or t <= 0.0:
        raise ValueError(f"temperature must be a finite positive number; got {temperature!r}")
    return t


# ----------------------------------------------------------------------------- core


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` in float64, as a numpy array.

    Computed as ``exp(x - max x) / sum exp(x - max x)`` with ``x = logits / T``, the same
    arithmetic `fit_temperature` uses for every T on its grid, so a Python loop over
    temperatures with this function and `expected_calibration_error` finds the same T.

    Args:
        logits: Scores, shape (n, k).
        temperature: T > 0; docs/method.md's CSD divides the teacher's logits by T.

    Returns:
        Probabilities, float64, shape (n, k).

    Raises:
        CalibrationInputError: Non-finite logits or a wrong shape.
    """
    z = _check_matrix(logits, "logits").to(torch.float64)
    # Row-major like the input: downstream row reductions are slow on the (k, n) layout.
    return np.ascontiguousarray(_softmax_t(z, _check_temperature(temperature)).cpu().numpy())


def _softmax_t(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(z / T)`` over the classes of (n, k) scores, classes-major inside.

    The arithmetic is the one `fit_temperature` does for each T, element by element: the
    quotient ``x = z / T``, ``exp(x - max x)`` and a left-to-right sum over the classes of a
    (k, n) layout, so ``max p = 1 / s`` comes out bit for bit the same in both.
    """
    # Contiguous (k, n), like each (k, n) slice of the search's block: torch picks its exp
    # kernel (vectorised or not) by layout, and the two kernels differ in the last bit.
    e = z.T.contiguous() / temperature
    e.sub_(e.amax(dim=0, keepdim=True)).exp_()
    return (e / e.sum(dim=0, keepdim=True)).T


def _width_edges(n_bins: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # k / n_bins by one correctly rounded division in the confidences' dtype: a confidence
    # equal to k / n_bins in that dtype lands in bin k (linspace may be one ulp off).
    return torch.arange(n_bins + 1, dtype=dtype, device=device) / n_bins


def _equal_width_index(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Bin of each confidence under the [lo, hi), last-bin-closed rule; any leading shape."""
    edges = _width_edges(n_bins, conf.dtype, conf.device)
    idx = torch.bucketize(conf, edges, right=True) - 1  # largest b with edges[b] <= conf
    return idx.clamp_(0, n_bins - 1)  # 1.0 (and anything above) into the last bin


def _equal_mass_index(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Quantile bins over the last dimension: sorted confidences cut into n_bins runs whose
    sizes differ by at most one (``numpy.array_split`` sizes: the first ``n % n_bins`` runs
    get one more). Equal confidences may fall on both sides of a cut; the stable sort keeps
    that deterministic. With fewer samples than bins the last bins are empty."""
    n = conf.shape[-1]
    sizes = torch.full((n_bins,), n // n_bins, dtype=torch.long, device=conf.device)
    sizes[: n % n_bins] += 1
    bin_of_rank = torch.repeat_interleave(torch.arange(n_bins, device=conf.device), sizes)
    order = torch.sort(conf, dim=-1, stable=True).indices
    idx = torch.empty_like(order)
    idx.scatter_(-1, order, bin_of_rank.expand_as(order).contiguous())
    return idx


def _bin_index(conf: torch.Tensor, n_bins: int, binning: str) -> torch.Tensor:
    if binning == "equal_width":
        return _equal_width_index(conf, n_bins)
    return _equal_mass_index(conf, n_bins)


def _bin_sums(
    conf: torch.Tensor, hit: torch.Tensor, idx: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row, per-bin count, sum of confidences and sum of hits; inputs (g, n) -> (g, n_bins)."""
    g = conf.shape[0]
    flat = (idx + torch.arange(g, device=idx.device).unsqueeze(1) * n_bins).reshape(-1)
    zeros = torch.zeros(g * n_bins, dtype=torch.float64, device=conf.device)
    count = zeros.clone().index_add_(0, flat, torch.ones_like(flat, dtype=torch.float64))
    conf_sum = zeros.clone().index_add_(0, flat, conf.reshape(-1).to(torch.float64))
    hit_sum = zeros.index_add_(0, flat, hit.expand_as(conf).reshape(-1).to(torch.float64))
    return count.view(g, n_bins), conf_sum.view(g, n_bins), hit_sum.view(g, n_bins)


def _binned_error(conf: torch.Tensor, hit: torch.Tensor, n_bins: int, binning: str) -> torch.Tensor:
    """ECE of each row of ``conf`` (g, n) against ``hit`` (g, n) or (n,), float64 (g,).

    ``|B_b|/n * |acc_b - conf_b| = |sum_{i in b} (hit_i - conf_i)| / n``: one scatter per
    call, no division by a bin's count, so empty bins contribute exactly 0.
    """
    g, n = conf.shape
    idx = _bin_index(conf, n_bins, binning)
    flat = (idx + torch.arange(g, device=idx.device).unsqueeze(1) * n_bins).reshape(-1)
    gap = (hit - conf.to(torch.float64)).reshape(-1)  # hit (n,) broadcasts over the g rows
    gap_sum = torch.zeros(g * n_bins, dtype=torch.float64, device=conf.device).index_add_(0, flat, gap)
    return gap_sum.view(g, n_bins).abs().sum(dim=1) / n


def _top1(p: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # argmax takes the first of tied maxima, as numpy does (torch.max promises no index).
    return p.amax(dim=1), (p.argmax(dim=1) == y).to(torch.float64)


def calibration_bins(
    probs: Any, labels: Any, n_bins: int = 10, binning: Binning = "equal_width"
) -> BinStats:
    """Per-bin counts, accuracy and confidence of the top-1 prediction, and the ECE.

    The statistics a reliability diagram draws (issue 4). Binning and edge rule as in the
    module docstring (docs/method.md, ECE).

    Args:
        probs: Probabilities, shape (n, k); rows sum to 1.
        labels: Gold class indices, shape (n,).
        n_bins: Number of bins (10 by default, docs/method.md, ECE; 15 is also logged).
        binning: ``"equal_width"`` or ``"equal_mass"`` (quantile bins, about n / n_bins each).

    Returns:
        `BinStats`; empty bins have count 0 and nan accuracy and confidence.

    Raises:
        CalibrationInputError: Bad probabilities or labels.
    """
    n_bins, binning = _check_n_bins(n_bins), _check_binning(binning)
    p = _check_probs(probs)
    y = _check_labels(labels, p.shape[0], p.shape[1], p.device)
    conf, hit = _top1(p, y)
    conf, hit = conf.unsqueeze(0), hit.unsqueeze(0)
    idx = _bin_index(conf, n_bins, binning)
    count, conf_sum, hit_sum = _bin_sums(conf, hit, idx, n_bins)
    count, conf_sum, hit_sum = count[0].cpu().numpy(), conf_sum[0].cpu().numpy(), hit_sum[0].cpu().numpy()
    ece = float(np.abs(hit_sum - conf_sum).sum() / p.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(count > 0, hit_sum / count, np.nan)
        confidence = np.where(count > 0, conf_sum / count, np.nan)
    if binning == "equal_width":
        edges = _width_edges(n_bins, torch.float64, torch.device("cpu")).numpy()
    else:
        c = conf[0].to(torch.float64).cpu().numpy()
        i = idx[0].cpu().numpy()
        edges = np.full(n_bins + 1, np.nan)
        for b in range(n_bins):
            if count[b] > 0:
                edges[b] = c[i == b].min()
        edges[n_bins] = c.max()
    return BinStats(
        edges=edges,
        counts=count.astype(np.int64),
        accuracy=accuracy,
        confidence=confidence,
        ece=ece,
        binning=binning,
    )


def expected_calibration_error(
    probs: Any,
    labels: Any,
    n_bins: int = 10,
    binning: Binning = "equal_width",
    classwise: bool = False,
) -> float:
    """Expected calibration error, a fraction in [0, 1] (the report shows percent).

    Top-1 (default): ``sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` over bins of the largest
    probability (docs/method.md, ECE). Agrees with torchmetrics'
    ``MulticlassCalibrationError(n_bins=n_bins, norm="l1")`` wherever no confidence sits on a
    bin edge.

    Classwise (Kull et al. 2019, "classwise-ECE"): for every class j, bin all n samples by
    ``p_ij`` (same binning and edge rule), and take
    ``ECE_j = sum_b |B_jb|/n * |mean_{i in B_jb} 1[y_i = j] - mean_{i in B_jb} p_ij|``;
    the result is the unweighted mean of ``ECE_j`` over the k classes.

    Args:
        probs: Probabilities, shape (n, k); rows sum to 1.
        labels: Gold class indices, shape (n,).
        n_bins: Number of bins.
        binning: ``"equal_width"`` or ``"equal_mass"``.
        classwise: Classwise ECE instead of top-1.

    Returns:
        ECE as a Python float.

    Raises:
        CalibrationInputError: Bad probabilities or labels.
    """
    n_bins, binning = _check_n_bins(n_bins), _check_binning(binning)
    p = _check_probs(probs)
    y = _check_labels(labels, p.shape[0], p.shape[1], p.device)
    if classwise:
        k = p.shape[1]
        onehot = (y.unsqueeze(0) == torch.arange(k, device=p.device).unsqueeze(1)).to(torch.float64)
        return float(_binned_error(p.T.contiguous(), onehot, n_bins, binning).mean())
    conf, hit = _top1(p, y)
    return float(_binned_error(conf.unsqueeze(0), hit, n_bins, binning)[0])


def top1_ece(confidence: Any, correct: Any, n_bins: int = 10, binning: Binning = "equal_width") -> float:
    """ECE, a fraction, from top-1 confidences and correctness given directly.

    For models that state one confidence instead of a distribution (the LLM baselines answer
    a label and a confidence, trainables/llm): the same bins and edge rule as
    `expected_calibration_error`, which equals this on ``probs.max(1)`` and ``argmax == label``.

    Args:
        confidence: Top-1 confidences in [0, 1], shape (n,).
        correct: 1 where the prediction is right, else 0, shape (n,).
        n_bins: Number of bins.
        binning: ``"equal_width"`` or ``"equal_mass"``.
    """
    n_bins, binning = _check_n_bins(n_bins), _check_binning(binning)
    conf = _to_tensor(confidence, "confidence").reshape(-1)
    if not torch.is_floating_point(conf):  # a float keeps its dtype: the edges are in it, as in expected_calibration_error
        conf = conf.to(torch.float64)
    hit = _to_tensor(correct, "correct").to(torch.float64).reshape(-1)
    if conf.numel() == 0 or conf.shape != hit.shape:
        raise CalibrationInputError(f"confidence {tuple(conf.shape)} and correct {tuple(hit.shape)} must be "
                                    "non-empty and of one length")
    if not bool(((conf >= 0) & (conf <= 1)).all()):
        raise CalibrationInputError("confidences must lie in [0, 1]")
    return float(_binned_error(conf.unsqueeze(0), hit, n_bins, binning)[0])


def temperature_grid(grid: Sequence[float] = (0.01, 5.0, 0.01)) -> np.ndarray:
    """The temperatures ``start, start + step, ..., stop`` (inclusive), exact to the grid.

    Built from integer multiples of ``step`` and rounded to 10 decimals, so the default is
    exactly the 500 values 0.01, 0.02, ..., 5.00 (docs/method.md, Temperature scaling) without the
    off-by-one or drift of a float ``arange``.

    Args:
        grid: ``(start, stop, step)``, all positive, ``stop >= start``, ``step`` with at most
            10 decimals.

    Returns:
        float64 array of temperatures, ascending.
    """
    try:
        start, stop, step = (float(v) for v in grid)
    except (TypeError, ValueError) as err:
        raise ValueError(f"grid must be (start, stop, step); got {grid!r}") from err
    if not all(math.isfinite(v) for v in (start, stop, step)) or start <= 0 or step <= 0 or stop < start:
        raise ValueError(f"grid needs 0 < start <= stop and step > 0; got {grid!r}")
    if abs(round(step, 10) - step) > 1e-12 * step:  # k * step is rounded to 10 decimals below
        raise ValueError(f"grid step {step!r} has more than 10 decimals (temperatures are exact to 10 decimals); "
                         "use a step like 0.01 or 1e-4")
    k0, k1 = round(start / step), round(stop / step)
    if k0 < 1:
        raise ValueError(f"grid start {start} is below one step {step}")
    return np.array([round(k * step, 10) for k in range(k0, k1 + 1)], dtype=np.float64)


def fit_temperature(
    logits: Any,
    labels: Any,
    grid: Sequence[float] = (0.01, 5.0, 0.01),
    n_bins: int = 10,
    return_curve: bool = False,
) -> float | tuple[float, np.ndarray, np.ndarray]:
    """The grid temperature T minimising the ECE of ``softmax(logits / T)``.

    CSD's search (docs/method.md, Self-distillation): T in 0.01, 0.02, ..., 5.00 minimising the
    teacher's 10-bin equal-width ECE on the ID validation set, ties to the smallest T (ECE
    values within 1e-12 count as tied, so summation-order noise cannot decide). No Python
    loop over temperatures: a (temperatures, k, n) block of scaled logits is built on the
    logits' device in float64, the grid cut into chunks of at most 2**18 values (one chunk
    on a GPU-sized problem is a few launches). The arithmetic per T is, element by element,
    that of `softmax` followed by `expected_calibration_error`, so on CPU the ECE curve
    equals a Python loop over the grid bit for bit and the same T wins (tests and
    ``bench/fit_temperature.py`` check it; CUDA's atomic adds may differ in the last bit,
    which the tie tolerance absorbs). The top-1 confidence is ``1 / sum_j exp(x_j - max x)``
    and the prediction is argmax of the logits, which no T > 0 changes, except in rows whose
    two largest logits nearly tie, recomputed per T.

    Args:
        logits: Scores, shape (n, k); any device.
        labels: Gold class indices, shape (n,).
        grid: ``(start, stop, step)``, see `temperature_grid`.
        n_bins: Equal-width bins of the ECE.
        return_curve: Also return the temperatures and their ECEs.

    Returns:
        T as a Python float, or ``(T, temperatures, eces)`` with numpy arrays (ECE fractions).

    Raises:
        CalibrationInputError: Bad logits or labels.
    """
    n_bins = _check_n_bins(n_bins)
    z = _check_matrix(logits, "logits").to(torch.float64)
    y = _check_labels(labels, z.shape[0], z.shape[1], z.device)
    temps_np = temperature_grid(grid)
    temps = torch.as_tensor(temps_np, device=z.device)
    n, k = z.shape
    zt = z.T.contiguous()  # (k, n): reductions over classes run across contiguous samples
    zmax = z.amax(dim=1)
    pred = z.argmax(dim=1)  # the first of tied maxima, as argmax of the probabilities takes
    # max_j fl(z_j / T) = fl(max_j z_j / T): rounding is monotone, so no (T, k, n) amax is needed.
    # Rows whose runner-up logit is within a hair of the top one (but not equal) could see
    # the two round to a probability tie at some T; only those rows (rarely any) get their
    # argmax recomputed per T, the rest keep argmax(z), which no T > 0 changes.
    gap = zmax.unsqueeze(1) - z
    gap[torch.arange(n, device=z.device), pred] = float("inf")
    t_lo, t_hi = float(temps[0]), float(temps[-1])
    hair = torch.clamp(zmax.abs() * (1e-6 * t_hi / t_lo), min=1e-9 * t_hi).unsqueeze(1)
    near = ((gap > 0) & (gap <= hair)).any(dim=1).nonzero().squeeze(1)
    hit_static = (pred == y).to(torch.float64)
    chunk = max(1, _GRID_CHUNK_ELEMENTS // (n * k))
    eces = []
    for start in range(0, temps.shape[0], chunk):
        t = temps[start : start + chunk]
        e = (zt.unsqueeze(0) / t.view(-1, 1, 1)).sub_((zmax / t.view(-1, 1)).unsqueeze(1)).exp_()
        s = e.sum(dim=1)  # (chunk, n), same order of additions as `softmax`
        conf = 1.0 / s  # = max p exactly: the top class has exp(0) = 1
        hit = hit_static.expand_as(conf)
        if near.numel():
            p_near = e[:, :, near] / s[:, near].unsqueeze(1)
            hit = hit.clone()
            hit[:, near] = (p_near.argmax(dim=1) == y[near]).to(torch.float64)
        eces.append(_binned_error(conf, hit, n_bins, "equal_width"))
    ece = torch.cat(eces).cpu().numpy()
    best = int(np.flatnonzero(ece <= ece.min() + _TIE_ATOL)[0])
    chosen = float(temps_np[best])
    if return_curve:
        return chosen, temps_np, ece
    return chosen


def classification_metrics(logits_or_probs: Any, labels: Any) -> dict[str, float]:
    """Macro F1, weighted F1 and accuracy of the argmax prediction, in percent.

    Computed with scikit-learn (issue 4: a well-kept library, not hand-written). Macro F1
    averages over the classes present in the gold labels or the predictions (sklearn's
    default, as the Caragea-lineage code calls it); a class with no true positive scores 0.

    Args:
        logits_or_probs: Scores, shape (n, k); only their argmax matters.
        labels: Gold class indices, shape (n,).

    Returns:
        ``{"macro_f1", "weighted_f1", "accuracy"}``, percent.

    Raises:
        CalibrationInputError: Bad scores or labels.
    """
    s = _check_matrix(logits_or_probs, "logits_or_probs")
    y = _check_labels(labels, s.shape[0], s.shape[1], s.device).cpu().numpy()
    pred = s.argmax(dim=1).cpu().numpy()
    return {
        "macro_f1": 100.0 * float(f1_score(y, pred, average="macro", zero_division=0)),
        "weighted_f1": 100.0 * float(f1_score(y, pred, average="weighted", zero_division=0)),
        "accuracy": 100.0 * float(accuracy_score(y, pred)),
    }


def negative_log_likelihood(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold class under ``softmax(logits / temperature)``, in nats.

    A proper scoring rule, so a search may rank calibration by it where ECE's bins are coarse
    (orchestrator/search.py, VAL_DERIVED). Computed by log-sum-exp in float64.
    """
    z = _check_matrix(logits, "logits").to(torch.float64) / _check_temperature(temperature)
    y = _check_labels(labels, z.shape[0], z.shape[1], z.device)
    return float((torch.logsumexp(z, dim=1) - z.gather(1, y.view(-1, 1)).squeeze(1)).mean())


def calibration_report(logits: Any, labels: Any, temperature: float = 1.0, n_bins: int = 10) -> dict[str, float]:
    """Everything logged per split, all on ``softmax(logits / temperature)``.

    docs/method.md, Metrics: macro and weighted F1 and accuracy; ECE with ``n_bins`` equal-width
    bins (the paper's metric, 10 by default; the spec's ``calibration.n_bins``, the same bins
    the temperature search uses); and the logged variants: 15 bins (torchmetrics' and Guo et
    al.'s default), ``n_bins`` equal-mass bins, and ``n_bins``-bin classwise ECE. All in
    percent. F1 does not change with T (docs/method.md, Temperature scaling).

    Args:
        logits: Scores, shape (n, k).
        labels: Gold class indices, shape (n,).
        temperature: T > 0, e.g. the generation's validation-optimal T for CSD methods.
        n_bins: Bins of ``ece``, ``ece_equal_mass`` and ``ece_classwise``.

    Returns:
        ``{"macro_f1", "weighted_f1", "accuracy", "ece", "ece15", "ece_equal_mass",
        "ece_classwise"}``, percent.
    """
    n_bins = _check_n_bins(n_bins)
    probs = softmax(logits, temperature)
    y = _check_labels(labels, probs.shape[0], probs.shape[1], torch.device("cpu"))
    report = classification_metrics(probs, y)
    report["ece"] = 100.0 * expected_calibration_error(probs, y, n_bins=n_bins)
    report["ece15"] = 100.0 * expected_calibration_error(probs, y, n_bins=15)
    report["ece_equal_mass"] = 100.0 * expected_calibration_error(probs, y, n_bins=n_bins, binning="equal_mass")
    report["ece_classwise"] = 100.0 * expected_calibration_error(probs, y, n_bins=n_bins, classwise=True)
    return report


def risk_coverage(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The risk-coverage curve of selective prediction (docs/method.md, Selective prediction).

    Abstaining below a threshold t keeps the rows with confidence >= t; at each distinct
    confidence, highest first, the curve has one point: the share of rows kept (coverage) and
    the error rate among them (risk). Tied confidences are kept or dropped together, since no
    threshold separates them.

    Args:
        confidence: Each row's top-class probability, shape (n,).
        correct: Whether each row's top class is its label, shape (n,).

    Returns:
        (thresholds, coverage, risk), each shape (m,) for the m distinct confidences, thresholds
        decreasing and coverage increasing to 1.
    """
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=bool).ravel()
    if conf.shape != hit.shape or conf.size == 0:
        raise CalibrationInputError(f"confidence and correct need the same non-zero length, got {conf.shape} and {hit.shape}")
    order = np.argsort(-conf, kind="stable")
    conf, errors = conf[order], np.cumsum(~hit[order])
    last = np.r_[np.flatnonzero(np.diff(conf) != 0), conf.size - 1]  # the last row of each tie group
    kept = last + 1
    return conf[last], kept / conf.size, errors[last] / kept


def aurc(confidence: Any, correct: Any) -> float:
    """The area under the risk-coverage curve, as a step function over coverage (lower is better).

    Without ties it is the mean, over k = 1..n, of the error rate among the k most confident
    rows (Geifman et al. 2019's AURC); tied rows enter together.
    """
    _, coverage, risk = risk_coverage(confidence, correct)
    return float(np.sum(risk * np.diff(np.r_[0.0, coverage])))
