"""Every preset through its whole chain, in-process, on real ISEAR / Emotion-Stimulus with a tiny encoder.

Also: a stage is deterministic (same seed, same metrics), is stored whole and found again, and
a user's own CSV dataset runs through the same chain. Through `run_stage` itself: a CSD student
distils at its parent's validation-optimal T and an SD student at 1, both from the pretrained
encoder; OOD fine-tuning trains a copy on OOD rows mixed with ambiguous ID rows, with the spec's
OOD settings; the README's example variant trains. A finished stage (one CE teacher, trained once
for the module) reports the scores of the logits it stores, draws its figures from them and was
seeded by its seed and generation; a spec comes back whole from its dict; caps draw stratified rows.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from orchestrator.plan import build_plan
from orchestrator.spec import parse_spec
from trainables import stage
from trainables.batching import encode
from trainables.calibration import (calibration_bins, calibration_report, expected_calibration_error, fit_temperature,
                                    softmax)
from trainables.cartography import DataMap
from trainables.data import UserDatasetSpec, load_dataset, ood_finetune_indices
from trainables.methods import get_method, list_methods
from trainables.methods.losses import DistillTask, MixupTask
from trainables.methods.partners import SaliencyPartners
from trainables.methods.registry import DistillConfig, MixupConfig
from trainables.models import build_model, load_numpy_state, load_tokenizer
from trainables.stage import DataConfig, OODConfig, StageSpec, late_handovers, load_handover, prepare_data, run_stage
from trainables.store import StageStore
from trainables.train import TrainConfig, pick_device, predict_logits

ROOT = Path(__file__).resolve().parents[1]

GEN_METRICS = ("val_macro_f1", "test_macro_f1", "test_weighted_f1", "test_accuracy", "test_ece", "test_ece_ts",
               "test_ece15", "test_ece_equal_mass", "temperature", "ood_macro_f1", "ood_ece", "ood_ft1_macro_f1",
               "ood_ft1_ece")


def tiny_raw(model: str, methods, datasets=("isear",)) -> dict:
    """A tiny sweep on `model`; a preset defined on an encoder of its own (electra_lcl) runs on
    `model` too, with its own training settings but one epoch."""
    methods = [{"name": m, "base": m, "model": model, "train": {"epochs": 1}}
               if isinstance(m, str) and get_method(m).model else m for m in methods]
    return {"name": "stages", "model": model, "max_length": 32, "seeds": [0], "generations": 2,
            "methods": methods, "datasets": list(datasets), "data": {"max_train": 36, "max_eval": 24},
            "train": {"epochs": 1, "batch_size": 12, "lr": 1e-3}, "ood": {"percents": [1], "epochs": 1}}


def run_chain(trial, store: StageStore) -> list[dict]:
    """What orchestrator/trial.py does, without Ray: data map, then generations in order."""
    results = []
    map_key = trial.data_map.key() if trial.data_map else trial.stages[0].key()
    handover = result = None
    for spec in trial.all_stages:
        if store.has(spec.key()):
            handover, result = load_handover(store, spec.key()), store.load_result(spec.key())
        else:
            data_map = store.load_arrays(map_key) if spec.key() != map_key and spec.data_map else None
            handover, result = run_stage(spec, handover if spec.parent else None, result if spec.parent else None,
                                        data_map, store)
        if spec is not trial.data_map:
            results.append(result)
    return results


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return StageStore(tmp_path_factory.mktemp("stages"))


@pytest.mark.slow  # 15 stages of every preset; the smaller tests below reach the same code
def test_every_preset_runs_its_chain_on_real_data(tiny_model, data_root, store):
    spec = parse_spec(tiny_raw(tiny_model, list_methods()), data_root=str(data_root))
    trials = build_plan(spec)
    for trial in trials:
        results = run_chain(trial, store)
        assert [r["generation"] for r in results] == list(range(1, trial.method.generations + 1))
        for r in results:
            missing = [m for m in GEN_METRICS if m not in r["metrics"]]
            assert not missing, (trial.key, missing)
            # T minimises the validation ECE (the tiny model's T sits at the grid's edge for test
            # logits as well, so the curve is compared too); ECE is the test logits' (raw, then at
            # that T), in percent
            arrays = store.load_arrays(r["key"])
            t, _, val_curve = fit_temperature(arrays["val_logits"], arrays["val_labels"], return_curve=True)
            assert r["temperature"] == r["metrics"]["temperature"] == t
            np.testing.assert_array_equal(arrays["temperature_ece"], val_curve)
            for key, temperature in (("test_ece", 1.0), ("test_ece_ts", t)):
                ece = 100 * expected_calibration_error(softmax(arrays["test_logits"], temperature), arrays["test_labels"])
                assert r["metrics"][key] == pytest.approx(ece, abs=1e-9), key
    unique = {s.key() for t in trials for s in t.all_stages}
    # shared prefixes: 6 teachers (ce, also the data map; rand; ea; ea66; sim; lcl, its own map) and 9 students
    # (sd, csd, csd_scaled_student from ce; sd and csd from ea66; csd from rand, ea, sim; scaled from sim)
    assert len(unique) == 15
    trained = (store.root / "trained.log").read_text().split()
    assert sorted(trained) == sorted(unique)  # the store logged every stage it trained
    arts = store.artifacts(trials[0].all_stages[0].key())  # the CE teacher, which is the data-map run
    assert (arts / "reliability_test.png").stat().st_size > 0 and (arts / "data_map.png").exists()


def spy_on_train(monkeypatch) -> list[dict]:
    """Each train() call that stage.py makes: its task, rows, data, settings and seed, the model's
    weights when it starts, and what the task returned at every step."""
    calls, real_train = [], stage.train

    def spy(model, task, data, validation, cfg, **kw):
        call = {"task": task, "rows": kw.get("rows"), "data": data, "cfg": cfg, "seed": kw["seed"],
                "record_dynamics": kw.get("record_dynamics", False), "outs": [],
                "start": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
        calls.append(call)

        def recording(*args):
            out = task(*args)
            call["outs"].append({k: v.item() for k, v in out.items() if k != "logits"})
            return out

        return real_train(model, recording, data, validation, cfg, **kw)

    monkeypatch.setattr(stage, "train", spy)
    return calls


@pytest.fixture()
def train_calls(monkeypatch) -> list[dict]:
    return spy_on_train(monkeypatch)


# the spec's calibration.n_bins for the stages below: neither the default 10 nor ece15's 15, so a
# metric or figure that ignores the setting shows
N_BINS = 7


def teacher_raw(model: str, methods) -> dict:
    """tiny_raw with seed 1 (a seed 0 hides a seed formula's factors), N_BINS bins and an evaluation batch
    size of its own."""
    raw = tiny_raw(model, methods)
    return {**raw, "seeds": [1], "calibration": {"n_bins": N_BINS}, "train": {**raw["train"], "eval_batch_size": 16}}


@pytest.fixture(scope="module")
def teacher(tiny_model, data_root, tmp_path_factory) -> SimpleNamespace:
    """The CE teacher of teacher_raw (also its chain's data map), trained and stored once for the tests
    that read a finished stage: spec, store (under root), handover, result, its train() calls, the batch
    size of each of its evaluations, wall time."""
    spec = build_plan(parse_spec(teacher_raw(tiny_model, ["ce"]), data_root=str(data_root)))[0].stages[0]
    root = tmp_path_factory.mktemp("teacher")
    store = StageStore(root / "stages")
    evaluated, real_predict = [], stage.predict_logits
    with pytest.MonkeyPatch.context() as mp:
        calls = spy_on_train(mp)
        mp.setattr(stage, "predict_logits", lambda model, data, batch_size=128: evaluated.append(batch_size)
                   or real_predict(model, data, batch_size))
        start = time.perf_counter()
        handover, result = run_stage(spec, None, None, None, store)
        wall = time.perf_counter() - start
    return SimpleNamespace(spec=spec, root=root, store=store, handover=handover, result=result, calls=calls,
                           evaluated=evaluated, wall=wall)


def assert_seeded_by_seed_and_generation(call: dict, spec: StageSpec, model: str) -> None:
    """Generation g of seed s builds its model and trains with seed 1000 s + g (tests/test_learning.py
    rebuilds a stage's untrained model so): a stage key stands for these numbers."""
    seed = 1000 * spec.seed + spec.generation
    assert call["seed"] == seed
    fresh = build_model(model, 6, seed=seed).state_dict()
    assert all(torch.equal(call["start"][k], v) for k, v in fresh.items())


def check_scores(teacher: SimpleNamespace) -> None:
    """ID: T minimises the validation ECE of the spec's bins (its curve stored), every score is the stored
    logits' (raw, and the ECE at T); OOD without fine-tuning and after it at each percentage: raw only."""
    spec, result, metrics = teacher.spec, teacher.result, teacher.result["metrics"]
    data, arrays = prepare_data(spec.data), teacher.store.load_arrays(spec.key())
    t, grid, curve = fit_temperature(arrays["val_logits"], data.validation.labels, n_bins=N_BINS, return_curve=True)
    assert result["temperature"] == metrics["temperature"] == t
    np.testing.assert_array_equal(arrays["temperature_grid"], grid)
    np.testing.assert_array_equal(arrays["temperature_ece"], curve)
    scored = {"val": data.validation.labels, "test": data.test.labels, "ood": data.ood_test.labels,
              "ood_ft1": data.ood_test.labels}
    for prefix, labels in scored.items():
        report = calibration_report(arrays[f"{prefix}_logits"], labels, n_bins=N_BINS)
        assert {k: metrics[f"{prefix}_{k}"] for k in report} == report, prefix
    for prefix in ("val", "test"):
        ece = 100 * expected_calibration_error(softmax(arrays[f"{prefix}_logits"], t), scored[prefix], n_bins=N_BINS)
        assert metrics[f"{prefix}_ece_ts"] == pytest.approx(ece, abs=1e-9)
    assert not {"ood_ece_ts", "ood_ft1_ece_ts", "distill_temperature"} & set(metrics)
    for prefix in ("val", "test", "ood"):
        np.testing.assert_array_equal(arrays[f"{prefix}_labels"], scored[prefix])
    assert (result["key"], result["generation"], result["labels"]) == (spec.key(), 1, list(data.id_data.labels))
    assert len(result["history"]) == spec.train.epochs and metrics["best_epoch"] == 1
    # validation, test, training rows (the handover), OOD test before and after fine-tuning: in the spec's batches
    assert teacher.evaluated == [spec.train.eval_batch_size] * 5 and spec.train.eval_batch_size == 16
    # the data map of the training rows (this teacher is its chain's data-map run)
    n, epochs = len(data.train), spec.train.epochs
    assert arrays["gold_probs"].shape == arrays["correct"].shape == (epochs, n)
    assert arrays["last_logits"].shape == (n, 6)
    with np.load(teacher.store.artifacts(spec.key()) / "logits.npz") as saved:  # beside the plots, every logit
        assert sorted(saved.files) == ["last_logits", "ood_ft1_logits", "ood_labels", "ood_logits", "test_labels",
                                       "test_logits", "val_labels", "val_logits"]
        assert all(np.array_equal(saved[k], arrays[k]) for k in saved.files)


def check_figures(teacher: SimpleNamespace) -> None:
    """The JSON beside each figure: the test reliability diagrams raw and at T in the spec's bins, the test
    errors by gold and predicted label, the validation ECE against T, the data map with its easy half,
    the OOD reliability diagram raw."""
    spec, t = teacher.spec, teacher.result["temperature"]
    arrays = teacher.store.load_arrays(spec.key())
    arts = teacher.store.artifacts(spec.key())

    def figure(name: str) -> dict:
        assert (arts / f"{name}.png").stat().st_size > 0
        return json.loads((arts / f"{name}.json").read_text())

    for name, split, temperature in (("reliability_test", "test", t), ("reliability_ood", "ood", 1.0)):
        shown = figure(name)
        assert shown["temperature"] == temperature
        for side, at in (("before", 1.0), ("after", temperature)):
            bins = calibration_bins(softmax(arrays[f"{split}_logits"], at), arrays[f"{split}_labels"], n_bins=N_BINS)
            assert shown[side] == bins.to_dict(), (name, side)
    errors = figure("confusion_test")
    counts = np.zeros((6, 6), dtype=int)
    np.add.at(counts, (arrays["test_labels"], arrays["test_logits"].argmax(1)), 1)
    assert errors["counts"] == counts.tolist() and errors["label_names"] == teacher.result["labels"]
    curve = figure("temperature_curve")
    assert (curve["temperatures"], curve["ece"], curve["chosen_t"]) == (arrays["temperature_grid"].tolist(),
                                                                        arrays["temperature_ece"].tolist(), t)
    dmap = DataMap.from_arrays(arrays)
    easy, _ = dmap.regions(1.0)
    mapped = figure("data_map")
    np.testing.assert_allclose(mapped["confidence"], dmap.confidence)
    np.testing.assert_allclose(mapped["variability"], dmap.variability)
    np.testing.assert_allclose(mapped["correctness"], dmap.correctness)
    assert mapped["easy"] == np.isin(np.arange(len(dmap.confidence)), easy).tolist()


def check_training(teacher: SimpleNamespace, model: str) -> None:
    """Its own training from the pretrained encoder, seeded by its seed and generation, with a data map;
    then section 4.4: a p% fine-tuning whose partners are the data map's ambiguous half."""
    data, arrays = prepare_data(teacher.spec.data), teacher.store.load_arrays(teacher.spec.key())
    _, ambiguous = DataMap.from_arrays(arrays).regions(1.0)
    (ood,) = teacher.calls[1:]  # after the teacher's own training: one percentage
    n_ood = len(ood_finetune_indices(data.ood_data, 1.0, seed=teacher.spec.data.split_seed))
    np.testing.assert_array_equal(ood["task"].partners.pool, n_ood + ambiguous)
    assert ood["seed"] == teacher.spec.seed + 100
    (call, _) = teacher.calls
    assert call["cfg"] == teacher.spec.train and call["rows"] is None and call["record_dynamics"]
    assert_seeded_by_seed_and_generation(call, teacher.spec, model)


def test_a_finished_stage_holds_what_it_reports(teacher, tiny_model):
    """Every check of the stored teacher in one test: mutmut credits a module fixture's work (the stage
    run) to the first test that requests it, so checks of that run in other tests would go unseen there."""
    check_scores(teacher)
    check_figures(teacher)
    check_training(teacher, tiny_model)
    seconds = teacher.result["seconds"]  # bench/stage_split.py reads these: setup, training, evaluation, OOD work
    assert set(seconds) == {"setup", "train", "evaluate", "ood"}
    assert seconds["train"] > 0 and min(seconds.values()) >= 0
    assert sum(seconds.values()) <= teacher.wall + 0.01  # parts of the stage's own time
    assert all(isinstance(v, float) and v == round(v, 3) for v in seconds.values())  # in milliseconds
    ood = teacher.result["ood_seconds"]  # the OOD work's two parts: fine-tuning, and every OOD evaluation
    assert set(ood) == {"finetune", "evaluate"} and ood["finetune"] > 0 and ood["evaluate"] > 0
    assert sum(ood.values()) == pytest.approx(seconds["ood"], abs=0.01)


def test_the_temperature_scaled_ece_is_in_the_specs_bins_too():
    """The tiny teacher's probabilities sit in one bin whatever the bin count, so logits of spread
    confidence show that a stage's ECE at T, like its raw scores, uses the spec's bins."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 6)) * 3
    # right where confident, random elsewhere: over- and underconfident bins, so the bins matter
    confident = softmax(logits, 2.0).max(1) > 0.6
    labels = np.where(confident, logits.argmax(1), rng.integers(0, 6, 300))
    ece = {n: 100 * expected_calibration_error(softmax(logits, 2.0), labels, n_bins=n) for n in (N_BINS, 10)}
    assert abs(ece[N_BINS] - ece[10]) > 0.1
    metrics = stage._metrics("test", logits, labels, N_BINS, 2.0)
    assert metrics["test_ece_ts"] == pytest.approx(ece[N_BINS], abs=1e-9)
    assert metrics["test_ece"] == calibration_report(logits, labels, n_bins=N_BINS)["ece"]


def test_a_stage_is_deterministic(teacher, tmp_path):
    _, result = run_stage(teacher.spec, None, None, None, StageStore(tmp_path))
    assert result["metrics"] == teacher.result["metrics"]
    a, b = (store.load_arrays(teacher.spec.key()) for store in (teacher.store, StageStore(tmp_path)))
    np.testing.assert_array_equal(a["test_logits"], b["test_logits"])


def test_user_csv_dataset_runs_through_the_chain(tiny_model, data_root, tmp_path, store):
    """A researcher's own CSV as the ID dataset, with Emotion-Stimulus (same labels) as its OOD partner."""
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


def test_students_distil_at_their_parents_temperature_from_the_pretrained_encoder(tiny_model, data_root, tmp_path,
                                                                                 teacher, train_calls):
    """CSD distils at its parent's validation-ECE-optimal T, SD at T = 1 (docs/method.md, Self-distillation),
    each with its spec's student scaling and annealing; both start from the pretrained encoder (born-again) and the head of
    their seed and generation, not from their teacher's weights."""
    trials = build_plan(parse_spec(teacher_raw(tiny_model, ["csd", "sd"]), data_root=str(data_root)))
    assert [t.method.distill.kind for t in trials] == ["csd", "sd"]
    assert trials[0].stages[0].key() == teacher.spec.key()
    handover, parent = teacher.handover, teacher.result
    assert parent["temperature"] != 1.0  # else CSD and SD could not be told apart here
    pretrained = build_model(tiny_model, 6, seed=0).state_dict()
    encoder = [k for k in pretrained if k.startswith("encoder.")]
    assert any(not np.array_equal(handover.weights[k], pretrained[k].numpy()) for k in encoder)  # the teacher moved
    csd, sd = (t.stages[1] for t in trials)
    sd = dataclasses.replace(sd, distill=dataclasses.replace(sd.distill, scale_student=True, annealing=False))
    for student, expected in ((csd, parent["temperature"]), (sd, 1.0)):
        _, result = run_stage(student, handover, parent, teacher.store.load_arrays(teacher.spec.key()),
                              StageStore(tmp_path))
        assert result["metrics"]["distill_temperature"] == expected
        call = [c for c in train_calls if isinstance(c["task"], DistillTask)][-1]  # this student's training
        task = call["task"]  # what the loss uses, not only what is logged
        assert (task.temperature, task.scale_student, task.annealing) == (expected, student.distill.scale_student,
                                                                          student.distill.annealing)
        assert all(torch.equal(call["start"][k], pretrained[k]) for k in encoder)
        assert_seeded_by_seed_and_generation(call, student, tiny_model)


def test_a_student_distils_from_its_parents_handover_and_builds_only_its_own_model(tiny_model, data_root, tmp_path,
                                                                                   teacher, train_calls, monkeypatch):
    """Issue 14: the parent hands over its fp32 training-set logits with its weights (the same logits a
    model rebuilt from those weights predicts), and the student builds one model: its own."""
    student = build_plan(parse_spec(teacher_raw(tiny_model, ["csd"]), data_root=str(data_root)))[0].stages[1]
    assert student.parent == teacher.spec.key()
    handover, parent, key = teacher.handover, teacher.result, teacher.spec.key()
    assert parent["kept"] == ["weights", "train_logits"]
    rebuilt = build_model(tiny_model, 6, seed=0).to(pick_device(teacher.spec.device))  # where the stage ran
    load_numpy_state(rebuilt, handover.weights)
    data = prepare_data(teacher.spec.data)
    np.testing.assert_array_equal(handover.train_logits,
                                  predict_logits(rebuilt, data.train, teacher.spec.train.eval_batch_size))
    from_disk = load_handover(teacher.store, key)
    np.testing.assert_array_equal(from_disk.train_logits, handover.train_logits)
    assert all(np.array_equal(from_disk.weights[k], v) for k, v in handover.weights.items())
    builds, real_build = [], stage.build_model
    monkeypatch.setattr(stage, "build_model", lambda *a, **kw: builds.append(a) or real_build(*a, **kw))
    run_stage(student, handover, parent, teacher.store.load_arrays(key), StageStore(tmp_path), keep=False)
    assert len(builds) == 1
    task = [c for c in train_calls if isinstance(c["task"], DistillTask)][-1]["task"]
    np.testing.assert_array_equal(task.teacher_logits.numpy(), handover.train_logits)


def test_a_stage_nobody_reads_keeps_no_weights(teacher, tmp_path):
    """Without `keep` a stage returns no handover and stores neither weights nor training-set logits,
    and says so; its metrics are those of the same stage that keeps them."""
    key, dropped = teacher.spec.key(), StageStore(tmp_path / "dropped")
    handover, result = run_stage(teacher.spec, None, None, None, dropped, keep=False)
    assert handover is None and result["kept"] == []
    assert dropped.load_result(key)["kept"] == []
    assert not (dropped.path(key) / "weights.safetensors").exists()
    assert "train_logits" not in dropped.load_arrays(key)
    assert load_handover(dropped, key) is None
    assert result["metrics"] == teacher.result["metrics"]
    # trained again for a student that came later: the stage stays as stored, its handover goes beside it
    handover, _ = run_stage(teacher.spec, None, None, None, dropped, keep=True)
    assert dropped.load_result(key)["kept"] == [] and not (dropped.path(key) / "weights.safetensors").exists()
    late = load_handover(dropped, key)
    np.testing.assert_array_equal(late.train_logits, teacher.handover.train_logits)
    assert all(np.array_equal(late.weights[k], v) for k, v in teacher.handover.weights.items())
    assert (dropped.root / "handovers" / "trained.log").read_text().split() == [key]
    assert late_handovers(dropped).load_result(key) == {"key": key, "kept": ["weights", "train_logits"]}
    # a retried task (its worker lost after the stage was stored) runs it again without keep: nothing changes
    _, again = run_stage(teacher.spec, None, None, None, dropped, keep=False)
    assert again["kept"] == [] and dropped.load_result(key)["kept"] == []


def test_a_stage_stored_with_its_handover_and_trained_again_writes_no_late_one(teacher, tmp_path):
    """A retried task of a stage that kept its handover stores nothing more: the stage stays as it was and
    no second copy of its handover goes beside it."""
    key = teacher.spec.key()
    store = StageStore(tmp_path / "stages")
    shutil.copytree(teacher.store.path(key), store.path(key))
    before = store.load_result(key)
    handover, _ = run_stage(teacher.spec, None, None, None, store, keep=True)
    assert handover is not None and store.load_result(key) == before
    assert not (store.root / "handovers").exists()


def test_a_stage_given_the_sweeps_prepared_data_does_not_prepare_it_again(tiny_model, data_root, tmp_path,
                                                                          monkeypatch):
    """The sweep prepares each dataset once and hands it to every stage task (issue 14). Here a stage of a
    dataset entry with `ood_finetune: false`: its OOD partner is prepared, but it fine-tunes on none of it."""
    stage_spec = build_plan(parse_spec(tiny_raw(tiny_model, ["ce"]), data_root=str(data_root)))[0].stages[0]
    stage_spec = dataclasses.replace(stage_spec, ood=None)
    data = prepare_data(stage_spec.data)
    assert data.ood_test is not None

    def refuse(cfg):
        raise AssertionError("prepared again")

    monkeypatch.setattr(stage, "prepare_data", refuse)
    _, result = run_stage(stage_spec, None, None, None, StageStore(tmp_path), keep=False, data=data)
    assert "test_macro_f1" in result["metrics"]
    assert not [k for k in result["metrics"] if k.startswith("ood_ft")]


def test_ood_finetuning_trains_a_copy_on_ood_rows_mixed_with_ambiguous_id_rows(tiny_model, data_root, train_calls):
    """Section 4.4: p% OOD rows, each mixed with a random ambiguous ID row; the model handed in is kept."""
    spec = build_plan(parse_spec(tiny_raw(tiny_model, ["ce"]), data_root=str(data_root)))[0].stages[0]
    data = prepare_data(spec.data)
    model = build_model(tiny_model, 6, seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    before = predict_logits(model, data.ood_test)
    ambiguous = np.arange(1, len(data.train), 2)
    after = stage._ood_finetune(spec, model, data, ambiguous, 1.0)
    assert np.abs(after - before).max() > 1e-3  # the fine-tuned copy predicts otherwise
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())  # the generation's model is kept
    (call,) = train_calls
    n_ood = len(ood_finetune_indices(data.ood_data, 1.0, seed=spec.data.split_seed))
    task = call["task"]
    # the ID training's settings but the OOD section's epochs and batch size (its lr None: the ID lr), the last epoch kept
    assert call["cfg"] == dataclasses.replace(spec.train, epochs=spec.ood.epochs, batch_size=spec.ood.batch_size,
                                              select="last")
    assert call["rows"].tolist() == list(range(n_ood))  # the epoch is the OOD rows; ID rows follow them
    assert np.array_equal(task.partners.pool, n_ood + ambiguous)
    assert (task.layer, task.alpha, task.main_weight) == ("features", 5.0, 0.5)
    assert all(out["mix"] > 0 for out in call["outs"])


def test_ood_finetuning_follows_the_specs_ood_settings(teacher, train_calls):
    """The spec's OOD section: epochs, batch size, learning rate, Beta(alpha, alpha) and the OOD rows'
    weight; the p% OOD rows are drawn with the data's split seed and tokenised as the ID rows are."""
    ood = OODConfig(percents=(3.0,), epochs=2, batch_size=5, lr=0.01, alpha=2.0, ood_weight=0.3)
    spec = dataclasses.replace(teacher.spec, ood=ood, data=dataclasses.replace(teacher.spec.data, split_seed=5))
    data = prepare_data(teacher.spec.data)  # only the OOD draw reads the split seed here
    ambiguous = np.arange(0, 10, 3)
    stage._ood_finetune(spec, build_model(spec.data.model, 6, seed=0), data, ambiguous, 3.0)
    (call,) = train_calls
    assert call["cfg"] == dataclasses.replace(spec.train, epochs=2, batch_size=5, lr=0.01, select="last")
    assert call["seed"] == spec.seed + 300  # one seed per percentage
    task = call["task"]
    assert (task.alpha, task.main_weight, task.layer) == (2.0, 0.3, "features")
    pool, picked = data.ood_data.train, ood_finetune_indices(data.ood_data, 3.0, seed=5)
    assert not np.array_equal(picked, ood_finetune_indices(data.ood_data, 3.0, seed=teacher.spec.data.split_seed))
    rows = encode([pool.texts[i] for i in picked], pool.labels[picked], load_tokenizer(spec.data.model),
                  spec.data.max_length)
    assert max(rows.lengths) == spec.data.max_length  # some OOD texts are cut at max_length
    joined = call["data"]  # the OOD rows, then the ID training rows their partners come from
    assert len(joined) == len(rows) + len(data.train)
    assert all(np.array_equal(a, b) for a, b in zip(joined.ids, rows.ids + data.train.ids))
    np.testing.assert_array_equal(joined.labels, np.concatenate([rows.labels, data.train.labels]))
    assert call["rows"].tolist() == list(range(len(rows)))
    np.testing.assert_array_equal(task.partners.pool, len(rows) + ambiguous)


def test_a_66_percent_ea_teacher_trains_on_its_two_subsets_only(teacher, train_calls, tmp_path):
    """EA66 (Hosseini and Caragea 2022): the teacher's epochs are the 33% easy and 33% ambiguous rows of
    the data map it is given; the partners come from the other subset."""
    recipe = get_method("ea66_m_mixup").teacher
    spec = dataclasses.replace(teacher.spec, teacher=recipe, data_map=teacher.spec.key(), ood=None)
    arrays = teacher.store.load_arrays(teacher.spec.key())
    run_stage(spec, None, None, arrays, StageStore(tmp_path), keep=False)
    easy, ambiguous = DataMap.from_arrays(arrays).regions(recipe.ea_fraction)
    (call,) = train_calls
    assert call["rows"].tolist() == sorted(easy.tolist() + ambiguous.tolist()) and len(call["rows"]) < 0.7 * 36
    assert not call["record_dynamics"]  # the CE teacher's map, not its own


def test_an_lcl_teachers_weighting_network_is_the_pretrained_encoder_with_a_head_of_its_own(tiny_model, teacher):
    """LCL's weighting network: a second copy of the encoder, its head seeded apart from the model's
    (1000 s + 999; the model's is 1000 s + 1)."""
    spec = dataclasses.replace(teacher.spec, teacher=MixupConfig("lcl"), device="cpu")
    task, rows = stage._teacher_task(spec, prepare_data(spec.data), None, 6)
    weights = task.weighting.state_dict()
    fresh = build_model(tiny_model, 6, seed=1000 * spec.seed + 999).state_dict()
    assert rows is None and all(torch.equal(v, fresh[k]) for k, v in weights.items())
    model = build_model(tiny_model, 6, seed=1000 * spec.seed + spec.generation).state_dict()
    assert not torch.equal(weights["out_proj.weight"], model["out_proj.weight"])


def test_a_signed_saliency_teacher_starts_from_the_signed_saliency_of_its_data_map(teacher):
    """signed_saliency: the Sim-MixUp partners' first table is softmax - onehot of the data map's last
    logits, not its absolute value, and stays signed."""
    spec = dataclasses.replace(teacher.spec, teacher=MixupConfig("sim", signed_saliency=True))
    data, arrays = prepare_data(spec.data), teacher.store.load_arrays(teacher.spec.key())
    task, _ = stage._teacher_task(spec, data, arrays, 6)
    onehot = np.eye(6)[data.train.labels]
    expected = softmax(arrays["last_logits"]) - onehot
    assert task.partners.signed and (expected < 0).any()
    np.testing.assert_allclose(task.partners.table.numpy(), expected, atol=1e-6)


def readme_variant() -> dict:
    """The method variant of the spec example in docs/guide.md (`base: sim_mixup_csd` with teacher options)."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "guide.md").read_text(), re.S)
    block = next(b for b in blocks if "base: sim_mixup_csd" in b)
    return next(m for m in yaml.safe_load(block)["methods"] if isinstance(m, dict))


def test_the_readme_variant_trains(tiny_model, data_root, tmp_path, train_calls):
    variant = readme_variant()
    assert variant["teacher"] == {"layer": "logits", "alpha": 0.4, "scope": "batch"}
    trial = build_plan(parse_spec(tiny_raw(tiny_model, [variant]), data_root=str(data_root)))[0]
    store = StageStore(tmp_path)
    run_stage(trial.data_map, None, None, None, store)
    handover, _ = run_stage(trial.stages[0], None, None, store.load_arrays(trial.data_map.key()), store)
    call = next(c for c in train_calls if isinstance(c["task"], MixupTask) and c["task"].layer == "logits")
    task = call["task"]
    assert (type(task.partners), task.partners.scope, task.alpha) == (SaliencyPartners, "batch", 0.4)
    losses = [out["loss"] for out in call["outs"]]
    assert np.isfinite(losses).all() and len(set(losses)) == len(losses) > 1
    assert all(out["mix"] > 0 for out in call["outs"])
    changed = {k for k, v in call["start"].items() if not np.array_equal(handover.weights[k], v.numpy())}
    assert "out_proj.weight" in changed and any(k.startswith("encoder.") for k in changed)


def test_a_stage_records_where_its_time_went(teacher, capsys):
    """bench/stage_split.py splits a stored stage's time: setup against training, evaluation and OOD work."""
    from bench import stage_split

    key = teacher.spec.key()
    assert json.loads((teacher.store.path(key) / "result.json").read_text())["seconds"] == teacher.result["seconds"]
    assert stage_split.main([str(teacher.root)]) == 0
    assert f"| {key} | 1 |" in capsys.readouterr().out


def test_a_stage_spec_comes_back_whole_from_its_dict():
    """A stage task gets its spec as a dict (orchestrator/trial.py); user datasets come back as their
    specs, and lists where tuples were (labels, OOD percentages: JSON, YAML) as tuples."""
    mine = UserDatasetSpec(name="mine", path="/x/mine.csv", labels=("joy", "fear"), partner="theirs")
    theirs = UserDatasetSpec(name="theirs", path="/x/theirs.csv", labels=("joy", "fear"), role="ood", partner="mine")
    data = DataConfig(dataset=mine, ood_dataset=theirs, data_root="/d", model="m", max_train=10, fingerprint="f")
    spec = StageSpec(generation=2, seed=3, data=data, train=TrainConfig(epochs=2), teacher=MixupConfig("sim"),
                     distill=DistillConfig("csd", generations=3, scale_student=True), parent="g1-a", data_map="g1-b",
                     ood=OODConfig(percents=(1.0, 5.0), epochs=2), n_bins=7, device="cpu")
    for same in (spec, dataclasses.replace(spec, ood=None, data=dataclasses.replace(data, ood_dataset="isear"))):
        assert StageSpec.from_dict(dataclasses.asdict(same)) == same
    listed = StageSpec.from_dict(json.loads(json.dumps(dataclasses.asdict(spec))))
    assert (listed.data.dataset.labels, listed.data.ood_dataset.labels, listed.ood.percents) == (
        ("joy", "fear"), ("joy", "fear"), (1.0, 5.0))
    assert listed.key() == spec.key()


def test_a_capped_split_is_a_stratified_draw_in_the_datasets_order(data_root):
    """data.max_train / max_eval: at most that many rows, every label in its share, the same rows for every
    training seed (the split seed decides), in the dataset's order; a cap the split fits leaves it whole."""
    split = load_dataset("isear", data_root).train
    assert stage.cap_split(split, None, 13) is split and stage.cap_split(split, len(split), 13) is split
    capped = stage.cap_split(split, 70, 13)
    assert len(capped) == 70 and capped.texts == stage.cap_split(split, 70, 13).texts
    assert capped.texts != stage.cap_split(split, 70, 14).texts
    share = np.bincount(split.labels, minlength=7) * 70 / len(split)
    assert np.abs(np.bincount(capped.labels, minlength=7) - share).max() < 1
    rows = iter(range(len(split)))  # a subsequence of the split: each row found after the previous one
    assert all(any(split.texts[i] == text and split.labels[i] == label for i in rows)
               for text, label in zip(capped.texts, capped.labels))
