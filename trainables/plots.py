"""Pictures of calibration that people look at (issue 4), as PNG plus the data behind them.

Every function draws with matplotlib's Agg backend (no display needed, safe in Ray workers),
writes one PNG, and returns a JSON-able dict of exactly the numbers drawn; with
``save_json=True`` (the default) that dict is also written next to the PNG, same name with
``.json``, so a figure can be redrawn or checked without the run (docs/method.md, Metrics: keep
what any variant can be recomputed from). NaN (an empty bin) is written as null.

- `reliability_diagram`, `reliability_pair`: accuracy and confidence per bin, gap shaded,
  counts below, ECE in the title (docs/method.md, ECE: 10 equal-width bins, [lo, hi), last closed);
  the pair is before / after temperature scaling.
- `confusion_matrix_plot`: the paper's Figure 1, confusion of the errors on the test set.
- `temperature_curve_plot`: ECE against T with CSD's chosen T (docs/method.md, Temperature scaling).
- `data_map_plot`: dataset cartography (Swayamdipta et al. 2020; docs/method.md, Data maps).
- `reliability_panels`: several methods' diagrams in one figure (orchestrator/figures.py, and the
  report's --diagrams). All reliability diagrams are drawn by `_reliability_figure`.
- `series_plot`: mean ± std curves, e.g. per generation.
- `trade_off_plot`: a search's samples as validation F1 against ECE, the trade-off front marked.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display in workers or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from trainables.calibration import calibration_bins, softmax  # noqa: E402

__all__ = [
    "confusion_matrix_plot",
    "data_map_plot",
    "reliability_diagram",
    "reliability_pair",
    "reliability_panels",
    "series_plot",
    "temperature_curve_plot",
    "trade_off_plot",
]

_DPI = 120


def _jsonable(value: Any) -> Any:
    """Numpy and NaN to plain JSON values (NaN and inf become None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _finish(fig: plt.Figure, path: str | Path, data: dict[str, Any], save_json: bool) -> dict[str, Any]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    data = _jsonable(data)
    if save_json:
        path.with_suffix(".json").write_text(json.dumps(data, indent=1, allow_nan=False))
    return data


def _draw_reliability(ax_top: plt.Axes, ax_bottom: plt.Axes, stats_dict: dict[str, Any], title: str) -> None:
    edges = np.asarray(stats_dict["edges"], dtype=float)
    n_bins = len(edges) - 1
    lo, width = edges[:-1], np.diff(edges)
    acc = np.array([np.nan if a is None else a for a in stats_dict["accuracy"]], dtype=float)
    conf = np.array([np.nan if c is None else c for c in stats_dict["confidence"]], dtype=float)
    filled = ~np.isnan(acc)
    ax_top.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax_top.bar(lo[filled], acc[filled], width=width[filled], align="edge", color="tab:blue",
               edgecolor="black", lw=0.5, label="accuracy")
    # The gap between accuracy and mean confidence, shaded: this is what ECE sums.
    bottom = np.minimum(acc[filled], conf[filled])
    ax_top.bar(lo[filled], np.abs(conf[filled] - acc[filled]), bottom=bottom, width=width[filled], align="edge",
               color="tab:red", alpha=0.3, hatch="//", edgecolor="tab:red", lw=0.5, label="gap")
    ax_top.plot(lo[filled] + width[filled] / 2, conf[filled], "o", color="tab:orange", ms=4, label="confidence")
    ax_top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    ax_top.set_title(f"{title + ': ' if title else ''}ECE {100 * stats_dict['ece']:.2f}% ({n_bins} bins)")
    ax_top.legend(loc="upper left", fontsize=7)
    ax_bottom.bar(lo, stats_dict["counts"], width=width, align="edge", color="grey", edgecolor="black", lw=0.5)
    ax_bottom.set(xlim=(0, 1), xlabel="confidence (top-1 probability)", ylabel="count")


def _reliability_figure(panels: Mapping[str, Mapping[str, Any]], title: str = "") -> plt.Figure:
    """The one way emocal draws reliability diagrams: one per panel (its bins, as
    ``calibration_bins(...).to_dict()`` gives them), in one row, the panel's name before its ECE."""
    fig, axes = plt.subplots(2, len(panels), figsize=(4.5 * len(panels), 5.5), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]})
    for i, (name, stats) in enumerate(panels.items()):
        _draw_reliability(axes[0, i], axes[1, i], stats, name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def reliability_diagram(
    probs: Any,
    labels: Any,
    path: str | Path,
    title: str = "",
    n_bins: int = 10,
    save_json: bool = True,
) -> dict[str, Any]:
    """Reliability diagram: accuracy and confidence per bin, gap shaded, counts below.

    Args:
        probs: Probabilities, shape (n, k).
        labels: Gold class indices, shape (n,).
        path: PNG to write.
        title: Prefix of the title (the ECE, in percent, always follows).
        n_bins: Equal-width bins (10 by default, docs/method.md, ECE).
        save_json: Also write the returned dict as ``path`` with suffix ``.json``.

    Returns:
        ``{"title", "binning", "n_bins", "edges", "counts", "accuracy", "confidence", "ece"}``.
    """
    stats = calibration_bins(probs, labels, n_bins=n_bins)
    data = {"title": title, **stats.to_dict()}
    return _finish(_reliability_figure({title: data}), path, data, save_json)


def reliability_pair(
    logits: Any,
    labels: Any,
    temperature: float,
    path: str | Path,
    title: str = "",
    n_bins: int = 10,
    save_json: bool = True,
) -> dict[str, Any]:
    """Reliability diagrams before (T = 1) and after temperature scaling, side by side.

    Args:
        logits: Scores, shape (n, k).
        labels: Gold class indices, shape (n,).
        temperature: The fitted T (e.g. from `trainables.calibration.fit_temperature`).
        path: PNG to write.
        title: Prefix of the figure title.
        n_bins: Equal-width bins.
        save_json: Also write the returned dict next to the PNG.

    Returns:
        ``{"title", "temperature", "before": bins, "after": bins}``.
    """
    before, after = (
        calibration_bins(softmax(logits, t), labels, n_bins=n_bins).to_dict() for t in (1.0, temperature)
    )
    fig = _reliability_figure({"T = 1": before, f"T = {temperature:g}": after}, title)
    return _finish(fig, path, {"title": title, "temperature": float(temperature), "before": before, "after": after},
                   save_json)


def confusion_matrix_plot(
    preds: Any,
    labels: Any,
    label_names: Sequence[str],
    path: str | Path,
    errors_only: bool = True,
    normalize: bool = False,
    title: str = "",
    save_json: bool = True,
) -> dict[str, Any]:
    """Confusion matrix of gold (rows) against predicted (columns) labels, like the paper's
    Figure 1, which shows only the errors on the test set: with ``errors_only`` the diagonal
    is zeroed so the off-diagonal mistakes get the whole color scale.

    Args:
        preds: Predicted class indices, shape (n,).
        labels: Gold class indices, shape (n,).
        label_names: Class names in index order.
        path: PNG to write.
        errors_only: Zero the diagonal (correct predictions).
        normalize: Divide each row by its gold count over all samples (so a cell is the
            fraction of that gold class predicted as the column), instead of raw counts.
        title: Figure title.
        save_json: Also write the returned dict next to the PNG.

    Returns:
        ``{"label_names", "counts": full matrix, "shown": matrix drawn, "errors_only",
        "normalize", "n_errors"}``.
    """
    names = list(label_names)
    counts = confusion_matrix(np.asarray(labels), np.asarray(preds), labels=list(range(len(names))))
    shown = counts.astype(float)
    if errors_only:
        np.fill_diagonal(shown, 0.0)
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        shown = np.divide(shown, rows, out=np.zeros_like(shown), where=rows > 0)
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(shown, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted", ylabel="gold")
    top = shown.max() if shown.size else 0.0
    for i in ticks:
        for j in ticks:
            if errors_only and i == j:
                continue
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(shown[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if top and shown[i, j] > top / 2 else "black")
    n_errors = int(counts.sum() - np.trace(counts))
    ax.set_title(title or f"{'errors' if errors_only else 'confusion'} ({n_errors} errors of {int(counts.sum())})")
    data = {"title": title, "label_names": names, "counts": counts, "shown": shown, "errors_only": errors_only,
            "normalize": normalize, "n_errors": n_errors}
    return _finish(fig, path, data, save_json)


def temperature_curve_plot(
    temps: Any,
    eces: Any,
    chosen_t: float,
    path: str | Path,
    title: str = "",
    save_json: bool = True,
) -> dict[str, Any]:
    """ECE (percent) against temperature with the chosen T marked (CSD's search).

    Args:
        temps: Temperatures, e.g. from ``fit_temperature(..., return_curve=True)``.
        eces: ECE at each temperature, fractions.
        chosen_t: The selected T.
        path: PNG to write.
        title: Figure title.
        save_json: Also write the returned dict next to the PNG.

    Returns:
        ``{"title", "temperatures", "ece": fractions, "chosen_t", "chosen_ece"}``.
    """
    t = np.asarray(temps, dtype=float)
    e = np.asarray(eces, dtype=float)
    if t.shape != e.shape:
        raise ValueError(f"temps and eces differ in shape: {t.shape} vs {e.shape}")
    i = int(np.argmin(np.abs(t - chosen_t)))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(t, 100 * e, color="tab:blue", lw=1.2)
    ax.axvline(chosen_t, color="tab:red", ls="--", lw=1)
    ax.plot([t[i]], [100 * e[i]], "o", color="tab:red")
    ax.annotate(f"T = {chosen_t:g}, ECE {100 * e[i]:.2f}%", (t[i], 100 * e[i]), textcoords="offset points",
                xytext=(8, 8), fontsize=8)
    ax.set(xlabel="temperature T", ylabel="ECE (%)", title=title or "ECE vs temperature")
    data = {"title": title, "temperatures": t, "ece": e, "chosen_t": float(chosen_t), "chosen_ece": float(e[i])}
    return _finish(fig, path, data, save_json)


def data_map_plot(
    confidence: Any,
    variability: Any,
    correctness: Any,
    path: str | Path,
    easy_mask: Any = None,
    title: str = "",
    save_json: bool = True,
) -> dict[str, Any]:
    """Dataset cartography: variability (x) against confidence (y), colored by correctness.

    Swayamdipta et al. (2020) draw the map this way; docs/method.md, Data maps, defines
    confidence (mean gold probability over epochs) and variability (its std). With
    ``easy_mask`` the easy-to-learn samples are drawn as circles and the rest (ambiguous)
    as triangles.

    Args:
        confidence: Per-sample mean gold-label probability, shape (n,).
        variability: Per-sample std of it, shape (n,).
        correctness: Per-sample fraction of epochs predicted right, shape (n,), in [0, 1].
        path: PNG to write.
        easy_mask: Optional boolean mask of the easy-to-learn subset.
        title: Figure title.
        save_json: Also write the returned dict next to the PNG.

    Returns:
        ``{"title", "confidence", "variability", "correctness", "easy"}`` (easy is None
        without a mask).
    """
    conf = np.asarray(confidence, dtype=float)
    var = np.asarray(variability, dtype=float)
    corr = np.asarray(correctness, dtype=float)
    if not (conf.shape == var.shape == corr.shape) or conf.ndim != 1:
        raise ValueError(f"confidence, variability, correctness must be equal 1-D; got {conf.shape}, "
                         f"{var.shape}, {corr.shape}")
    easy = None if easy_mask is None else np.asarray(easy_mask, dtype=bool)
    if easy is not None and easy.shape != conf.shape:
        raise ValueError(f"easy_mask shape {easy.shape} differs from {conf.shape}")
    fig, ax = plt.subplots(figsize=(5, 4.5))
    groups = [(np.ones_like(conf, dtype=bool), "o", None)] if easy is None else [
        (easy, "o", "easy-to-learn"), (~easy, "^", "ambiguous")]
    sc = None
    for mask, marker, label in groups:
        sc = ax.scatter(var[mask], conf[mask], c=corr[mask], cmap="coolwarm_r", vmin=0, vmax=1, s=8, marker=marker,
                        alpha=0.7, label=label, linewidths=0)
    fig.colorbar(sc, ax=ax, label="correctness")
    if easy is not None:
        ax.legend(loc="lower right", fontsize=8)
    ax.set(xlabel="variability", ylabel="confidence", ylim=(0, 1), title=title or "data map")
    data = {"title": title, "confidence": conf, "variability": var, "correctness": corr, "easy": easy}
    return _finish(fig, path, data, save_json)


def reliability_panels(panels: Mapping[str, dict[str, Any]], path: str | Path, title: str = "",
                       save_json: bool = True) -> dict[str, Any]:
    """Several reliability diagrams in one row, each from its bins (``calibration_bins(...).to_dict()``,
    as ``reliability_pair`` saves them), e.g. CE vs CE + TS vs Sim-MixUp + CSD on one test set."""
    if not panels:
        raise ValueError("reliability_panels needs at least one panel")
    return _finish(_reliability_figure(panels, title), path, {"title": title, "panels": dict(panels)}, save_json)


def series_plot(x_label: str, panels: Mapping[str, Mapping[str, tuple[Any, Any, Any]]], path: str | Path,
                title: str = "", save_json: bool = True) -> dict[str, Any]:
    """Mean ± std curves: one axis per panel (e.g. "macro F1", "ECE"), one line per series.

    Args:
        panels: Panel (y label) -> series name -> (x, mean, std) sequences; a NaN std draws no band.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (y_label, series) in zip(axes.flat, panels.items()):
        for name, (x, mean, std) in series.items():
            x, mean, std = (np.asarray(v, dtype=float) for v in (x, mean, std))
            ax.plot(x, mean, "o-", label=name)
            ax.fill_between(x, mean - np.nan_to_num(std), mean + np.nan_to_num(std), alpha=0.2)
        ax.set(xlabel=x_label, ylabel=y_label, xticks=sorted({v for s in series.values() for v in s[0]}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    data = {"title": title, "x_label": x_label,
            "panels": {k: {n: {"x": x, "mean": m, "std": s} for n, (x, m, s) in v.items()} for k, v in panels.items()}}
    return _finish(fig, path, data, save_json)


def risk_coverage_plot(curves: Mapping[str, tuple[Any, Any]], path: str | Path, title: str = "",
                       save_json: bool = True) -> dict[str, Any]:
    """Risk-coverage curves (docs/method.md, Selective prediction): error rate among the kept
    predictions against the share kept, one line per method.

    Args:
        curves: label -> (coverage, risk) sequences, as `calibration.risk_coverage` returns them.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (coverage, risk) in curves.items():
        ax.step(np.asarray(coverage, dtype=float), 100 * np.asarray(risk, dtype=float), where="post", label=name)
    ax.set(xlabel="coverage (share of test rows predicted)", ylabel="risk: error rate among them (%)", xlim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    data = {"title": title, "curves": {k: {"coverage": c, "risk": r} for k, (c, r) in curves.items()}}
    return _finish(fig, path, data, save_json)


def trade_off_plot(points: Mapping[str, tuple[float, float]], front: Sequence[str], chosen: str | None,
                   path: str | Path, x_label: str = "validation ECE (%)", y_label: str = "validation macro F1 (%)",
                   title: str = "", stopped: Sequence[str] = (), save_json: bool = True) -> dict[str, Any]:
    """Every sample of a search as a point (ECE, F1), the trade-off front joined, the chosen one ringed.

    Args:
        points: sample name -> (ece, f1).
        front: the names on the front (no other point has higher F1 and lower ECE).
        chosen: the name of the chosen configuration, or None.
        stopped: samples stopped early (drawn hollow).
    """
    fig, ax = plt.subplots(figsize=(6, 4.5))
    at: dict[tuple[float, float], list[str]] = {}  # samples of one configuration lie on one point: one label
    for name, (ece, f1) in points.items():
        hollow = name in stopped
        ax.scatter([ece], [f1], s=40, facecolors="none" if hollow else "C0", edgecolors="C0")
        at.setdefault((ece, f1), []).append(name)
    for (ece, f1), names in at.items():
        ax.annotate(", ".join(names), (ece, f1), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if front:  # squares, so a front of one point shows too; the dashes join its points
        xy = sorted(points[n] for n in front)
        ax.plot([p[0] for p in xy], [p[1] for p in xy], "--", color="C1")
        ax.scatter([p[0] for p in xy], [p[1] for p in xy], marker="s", s=110, facecolors="none", edgecolors="C1",
                   label="trade-off front")
    if chosen is not None:
        ax.scatter([points[chosen][0]], [points[chosen][1]], s=200, facecolors="none", edgecolors="C3",
                   linewidths=2, label=f"chosen ({chosen})")
    ax.set(xlabel=x_label, ylabel=y_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="hollow: stopped by ASHA" if stopped else None, title_fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    data = {"title": title, "x_label": x_label, "y_label": y_label, "chosen": chosen, "front": list(front),
            "stopped": list(stopped), "points": {k: {"ece": e, "f1": f} for k, (e, f) in points.items()}}
    return _finish(fig, path, data, save_json)
