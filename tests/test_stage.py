"""Every preset through its whole chain, in-process, on real ISEAR / Emotion-Stimulus with a tiny encoder.

Also: a stage is deterministic (same seed, same metrics), is stored whole and found again, and
a user's own CSV dataset runs through the same chain. Through `run_stage` itself: a CSD student
distils at its parent's validation-optimal T and an SD student at 1, both from the pretrained
encoder; OOD fine-tuning trains a copy on OOD rows mixed with ambiguous ID rows; the README's
example variant trains.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from orchestrator.plan import build_plan
from orchestrator.spec import parse_spec
from trainables import stage
from trainables.calibration import expected_calibration_error, fit_temperature, softmax
from trainables.data import ood_finetune_indices
from trainables.methods import get_method, list_methods
from trainables.methods.losses import DistillTask, MixupTask
from trainables.methods.partners import SaliencyPartners
from trainables.models import build_model, load_numpy_state
from trainables.stage import load_handover, prepare_data, run_stage
from trainables.store import StageStore
from trainables.train import predict_logits

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


@pytest.fixture()
def train_calls(monkeypatch) -> list[dict]:
    """Each train() call that stage.py makes: its task and rows, the model's weights when it starts,
    and what the task returned at every step."""
    calls, real_train = [], stage.train

    def spy(model, task, data, validation, cfg, **kw):
        call = {"task": task, "rows": kw.get("rows"), "outs": [],
                "start": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        calls.append(call)

        def recording(*args):
            out = task(*args)
            call["outs"].append({k: v.item() for k, v in out.items() if k != "logits"})
            return out

        return real_train(model, recording, data, validation, cfg, **kw)

    monkeypatch.setattr(stage, "train", spy)
    return calls


def test_students_distil_at_their_parents_temperature_from_the_pretrained_encoder(tiny_model, data_root, tmp_path,
                                                                                 train_calls):
    """CSD distils at its parent's validation-ECE-optimal T, SD at T = 1 (METHOD.md); both students
    start from the pretrained encoder (born-again), not from their teacher's weights."""
    trials = build_plan(parse_spec(tiny_raw(tiny_model, ["csd", "sd"]), data_root=str(data_root)))
    assert [t.method.distill.kind for t in trials] == ["csd", "sd"]
    store, teacher = StageStore(tmp_path), trials[0].stages[0]
    handover, parent = run_stage(teacher, None, None, None, store)
    assert parent["temperature"] != 1.0  # else CSD and SD could not be told apart here
    pretrained = build_model(tiny_model, 6, seed=0).state_dict()
    encoder = [k for k in pretrained if k.startswith("encoder.")]
    assert any(not np.array_equal(handover.weights[k], pretrained[k].numpy()) for k in encoder)  # the teacher moved
    for trial, expected in zip(trials, (parent["temperature"], 1.0)):
        _, result = run_stage(trial.stages[1], handover, parent, store.load_arrays(teacher.key()), store)
        assert result["metrics"]["distill_temperature"] == expected
        call = [c for c in train_calls if isinstance(c["task"], DistillTask)][-1]  # this student's training
        assert call["task"].temperature == expected  # what the loss uses, not only what is logged
        assert all(torch.equal(call["start"][k], pretrained[k]) for k in encoder)


def test_a_student_distils_from_its_parents_handover_and_builds_only_its_own_model(tiny_model, data_root, tmp_path,
                                                                                   train_calls, monkeypatch):
    """Issue 14: the parent hands over its fp32 training-set logits with its weights (the same logits a
    model rebuilt from those weights predicts), and the student builds one model: its own."""
    trial = build_plan(parse_spec(tiny_raw(tiny_model, ["csd"]), data_root=str(data_root)))[0]
    teacher, student = trial.stages
    store = StageStore(tmp_path)
    handover, parent = run_stage(teacher, None, None, None, store)
    assert parent["kept"] == ["weights", "train_logits"]
    rebuilt = build_model(tiny_model, 6, seed=0)
    load_numpy_state(rebuilt, handover.weights)
    data = prepare_data(teacher.data)
    np.testing.assert_array_equal(handover.train_logits, predict_logits(rebuilt, data.train, teacher.train.eval_batch_size))
    from_disk = load_handover(store, teacher.key())
    np.testing.assert_array_equal(from_disk.train_logits, handover.train_logits)
    assert all(np.array_equal(from_disk.weights[k], v) for k, v in handover.weights.items())
    builds, real_build = [], stage.build_model
    monkeypatch.setattr(stage, "build_model", lambda *a, **kw: builds.append(a) or real_build(*a, **kw))
    run_stage(student, handover, parent, store.load_arrays(teacher.key()), store, keep=False)
    assert len(builds) == 1
    task = [c for c in train_calls if isinstance(c["task"], DistillTask)][-1]["task"]
    np.testing.assert_array_equal(task.teacher_logits.numpy(), handover.train_logits)


def test_a_stage_nobody_reads_keeps_no_weights(tiny_model, data_root, tmp_path):
    """Without `keep` a stage returns no handover and stores neither weights nor training-set logits,
    and says so; its metrics are those of the same stage that keeps them."""
    stage_spec = build_plan(parse_spec(tiny_raw(tiny_model, ["ce"]), data_root=str(data_root)))[0].stages[0]
    kept, dropped = StageStore(tmp_path / "kept"), StageStore(tmp_path / "dropped")
    _, with_handover = run_stage(stage_spec, None, None, None, kept)
    handover, result = run_stage(stage_spec, None, None, None, dropped, keep=False)
    assert handover is None and result["kept"] == []
    assert dropped.load_result(stage_spec.key())["kept"] == []
    assert not (dropped.path(stage_spec.key()) / "weights.safetensors").exists()
    assert "train_logits" not in dropped.load_arrays(stage_spec.key())
    assert load_handover(dropped, stage_spec.key()) is None
    assert result["metrics"] == with_handover["metrics"]


def test_a_stage_given_the_sweeps_prepared_data_does_not_prepare_it_again(tiny_model, data_root, tmp_path,
                                                                          monkeypatch):
    """The sweep prepares each dataset once and hands it to every stage task (issue 14)."""
    stage_spec = build_plan(parse_spec(tiny_raw(tiny_model, ["ce"]), data_root=str(data_root)))[0].stages[0]
    data = prepare_data(stage_spec.data)

    def refuse(cfg):
        raise AssertionError("prepared again")

    monkeypatch.setattr(stage, "prepare_data", refuse)
    _, result = run_stage(stage_spec, None, None, None, StageStore(tmp_path), keep=False, data=data)
    assert "test_macro_f1" in result["metrics"]


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
    assert call["rows"].tolist() == list(range(n_ood))  # the epoch is the OOD rows; ID rows follow them
    assert np.array_equal(task.partners.pool, n_ood + ambiguous)
    assert (task.layer, task.alpha, task.main_weight) == ("features", 5.0, 0.5)
    assert all(out["mix"] > 0 for out in call["outs"])


def readme_variant() -> dict:
    """The method variant of the README's spec example (`base: sim_mixup_csd` with teacher options)."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
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


def test_a_stage_records_where_its_time_went(tiny_model, data_root, tmp_path, capsys):
    """bench/stage_split.py reads these: setup against training, evaluation and OOD work."""
    import json

    from bench import stage_split

    spec = parse_spec(tiny_raw(tiny_model, ["ce"]), data_root=str(data_root))
    stage = build_plan(spec)[0].stages[0]
    store = StageStore(tmp_path / "stages")
    _, result = run_stage(stage, None, None, None, store)
    assert set(result["seconds"]) == {"setup", "train", "evaluate", "ood"}
    assert result["seconds"]["train"] > 0 and min(result["seconds"].values()) >= 0
    assert json.loads((store.path(stage.key()) / "result.json").read_text())["seconds"] == result["seconds"]
    assert stage_split.main([str(tmp_path)]) == 0
    assert f"| {stage.key()} | 1 |" in capsys.readouterr().out
