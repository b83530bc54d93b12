"""Every preset through its whole chain, in-process, on real ISEAR / Emotion-Stimulus with a tiny encoder.

Also: a stage is deterministic (same seed, same metrics), is stored whole and found again,
and a user's own CSV dataset runs through the same chain.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest

from orchestrator.plan import build_plan
from orchestrator.spec import parse_spec
from trainables.methods import list_methods
from trainables.stage import run_stage
from trainables.store import StageStore

GEN_METRICS = ("val_macro_f1", "test_macro_f1", "test_weighted_f1", "test_accuracy", "test_ece", "test_ece_ts",
               "test_ece15", "test_ece_equal_mass", "temperature", "ood_macro_f1", "ood_ece", "ood_ft1_macro_f1",
               "ood_ft1_ece")


def tiny_raw(model: str, methods, datasets=("isear",)) -> dict:
    return {"name": "stages", "model": model, "max_length": 32, "seeds": [0], "generations": 2,
            "methods": list(methods), "datasets": list(datasets), "data": {"max_train": 36, "max_eval": 24},
            "train": {"epochs": 1, "batch_size": 12, "lr": 1e-3}, "ood": {"percents": [1], "epochs": 1}}


def run_chain(trial, store: StageStore) -> list[dict]:
    """What orchestrator/trial.py does, without Ray: data map, then generations in order."""
    results = []
    map_key = trial.data_map.key() if trial.data_map else trial.stages[0].key()
    weights = result = None
    for spec in trial.all_stages:
        if store.has(spec.key()):
            weights, result = store.load_weights(spec.key()), store.load_result(spec.key())
        else:
            data_map = store.load_arrays(map_key) if spec.key() != map_key and spec.data_map else None
            weights, result = run_stage(spec, weights if spec.parent else None, result if spec.parent else None,
                                        data_map, store)
        if spec is not trial.data_map:
            results.append(result)
    return results


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return StageStore(tmp_path_factory.mktemp("stages"))


def test_every_preset_runs_its_chain_on_real_data(tiny_model, data_root, store):
    spec = parse_spec(tiny_raw(tiny_model, list_methods()), data_root=str(data_root))
    trials = build_plan(spec)
    for trial in trials:
        results = run_chain(trial, store)
        assert [r["generation"] for r in results] == list(range(1, trial.method.generations + 1))
        for r in results:
            missing = [m for m in GEN_METRICS if m not in r["metrics"]]
            assert not missing, (trial.key, missing)
            assert 0.01 <= r["temperature"] <= 5.0
            assert 0 <= r["metrics"]["test_ece"] <= 100
    unique = {s.key() for t in trials for s in t.all_stages}
    trained = (store.root / "trained.log").read_text().split()
    assert sorted(trained) == sorted(unique)  # every stage trained exactly once
    arts = store.artifacts(trials[0].all_stages[0].key())  # the CE teacher, which is the data-map run
    assert (arts / "reliability_test.png").stat().st_size > 0 and (arts / "data_map.png").exists()


def test_a_stage_is_deterministic(tiny_model, data_root, tmp_path):
    spec = parse_spec(tiny_raw(tiny_model, ["ce"]), data_root=str(data_root))
    stage = build_plan(spec)[0].stages[0]
    metrics = []
    for i in range(2):
        _, result = run_stage(stage, None, None, None, StageStore(tmp_path / str(i)))
        metrics.append(result["metrics"])
    assert metrics[0] == metrics[1]
    a, b = (StageStore(tmp_path / str(i)).load_arrays(stage.key()) for i in range(2))
    np.testing.assert_array_equal(a["test_logits"], b["test_logits"])


def test_user_csv_dataset_runs_through_the_chain(tiny_model, data_root, tmp_path, store):
    """A researcher's own CSV as the ID dataset, with Emotion-Stimulus (same labels) as its OOD partner."""
    from trainables.data import load_dataset

    isear = load_dataset("isear", data_root)
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "emotion"])
        for text, label in zip(isear.train.texts[:150], isear.train.labels[:150]):
            writer.writerow([text, isear.labels[label]])
    source = {"name": "mine", "path": str(path), "label_column": "emotion", "labels": list(isear.labels)}
    raw = tiny_raw(tiny_model, ["csd"], datasets=[{"name": "mine", "source": source, "ood": "emotion_stimulus"}])
    spec = parse_spec(raw, data_root=str(data_root))
    results = run_chain(build_plan(spec)[0], StageStore(tmp_path / "own"))
    assert [r["generation"] for r in results] == [1, 2]
    assert "ood_ft1_macro_f1" in results[1]["metrics"]
