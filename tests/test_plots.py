"""Every plot writes a non-empty PNG and the JSON of the data it draws (issue 4)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainables.calibration import expected_calibration_error, fit_temperature, softmax
from trainables.plots import (
    confusion_matrix_plot,
    data_map_plot,
    reliability_diagram,
    reliability_pair,
    reliability_panels,
    temperature_curve_plot,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png_and_json(path: Path, data: dict) -> dict:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC
    written = json.loads(path.with_suffix(".json").read_text())
    assert written == json.loads(json.dumps(data))
    return written


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 4)) * 3
    labels = np.array([rng.choice(4, p=row) for row in softmax(logits, 2.0)])
    return logits, labels


def test_reliability_diagram(tmp_path, case):
    logits, labels = case
    probs = softmax(logits)
    path = tmp_path / "rel.png"
    data = reliability_diagram(probs, labels, path, title="val")
    written = assert_png_and_json(path, data)
    assert written["ece"] == pytest.approx(expected_calibration_error(probs, labels))
    assert sum(written["counts"]) == 300 and len(written["accuracy"]) == 10
    assert written["title"] == "val"


def test_reliability_diagram_empty_bins_and_no_json(tmp_path):
    path = tmp_path / "sub" / "rel.png"
    data = reliability_diagram([[0.95, 0.05], [0.2, 0.8]], [0, 0], path, n_bins=15, save_json=False)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert not path.with_suffix(".json").exists()
    assert data["accuracy"][0] is None  # empty bin -> null
    json.dumps(data, allow_nan=False)


def test_reliability_pair(tmp_path, case):
    logits, labels = case
    t = fit_temperature(logits, labels)
    path = tmp_path / "pair.png"
    data = reliability_pair(logits, labels, t, path, title="test")
    written = assert_png_and_json(path, data)
    assert written["temperature"] == t
    assert written["before"]["ece"] == pytest.approx(expected_calibration_error(softmax(logits), labels))
    assert written["after"]["ece"] == pytest.approx(expected_calibration_error(softmax(logits, t), labels))


@pytest.mark.parametrize("errors_only,normalize", [(True, False), (False, True)])
def test_confusion_matrix(tmp_path, errors_only, normalize):
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    preds = np.array([0, 1, 1, 2, 2, 0, 2])
    path = tmp_path / "cm.png"
    data = confusion_matrix_plot(preds, labels, ["joy", "anger", "fear"], path, errors_only, normalize)
    written = assert_png_and_json(path, data)
    assert written["counts"] == [[1, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert written["n_errors"] == 3
    shown = np.array(written["shown"])
    if errors_only:
        assert np.trace(shown) == 0 and shown[0, 1] == 1
    else:
        np.testing.assert_allclose(shown.sum(axis=1), 1.0)


def test_temperature_curve(tmp_path, case):
    logits, labels = case
    t, temps, eces = fit_temperature(logits, labels, return_curve=True)
    path = tmp_path / "curve.png"
    data = temperature_curve_plot(temps, eces, t, path)
    written = assert_png_and_json(path, data)
    assert written["chosen_t"] == t and len(written["temperatures"]) == 500
    assert written["chosen_ece"] == pytest.approx(min(eces))


def test_data_map(tmp_path):
    rng = np.random.default_rng(1)
    conf = rng.uniform(size=200)
    var = rng.uniform(0, 0.5, size=200)
    corr = rng.integers(0, 4, size=200) / 3
    easy = conf >= np.median(conf)
    for mask, name in [(None, "plain.png"), (easy, "easy.png")]:
        data = data_map_plot(conf, var, corr, tmp_path / name, easy_mask=mask)
        written = assert_png_and_json(tmp_path / name, data)
        assert len(written["confidence"]) == 200
        assert (written["easy"] is None) == (mask is None)
    with pytest.raises(ValueError):
        data_map_plot(conf, var[:10], corr, tmp_path / "bad.png")


def test_reliability_panels(tmp_path, case):
    """Several methods' diagrams from their saved bins (what orchestrator/figures.py draws), in the order given."""
    logits, labels = case
    t = fit_temperature(logits, labels)
    pair = reliability_pair(logits, labels, t, tmp_path / "pair.png")
    panels = {"ce g1, raw": pair["before"], f"csd g2, T = {t:.2f}": pair["after"]}
    path = tmp_path / "all.png"
    data = reliability_panels(panels, path, title="isear")
    written = assert_png_and_json(path, data)
    assert written == {"title": "isear", "panels": panels}
    assert list(written["panels"]) == ["ce g1, raw", f"csd g2, T = {t:.2f}"]
    with pytest.raises(ValueError, match="at least one panel"):
        reliability_panels({}, tmp_path / "x.png")
