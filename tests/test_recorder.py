"""The driver as MLflow's only writer (orchestrator/recorder.py): what it logs from the stage
store, when it calls a run finished, and that MLflow trouble never stops a sweep."""
from __future__ import annotations

import logging
import pickle
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient

from orchestrator.recorder import RunRecorder, write_state
from orchestrator.tracking import PlannedRun, ensure_experiment, sync_runs
from trainables.store import StageStore

TRIAL = "isear-csd-seed0"
STAGES = [(1, "g1-aaaaaaaaaaaaaaaaaaaa"), (2, "g2-bbbbbbbbbbbbbbbbbbbb"), (3, "g3-cccccccccccccccccccc")]


@pytest.fixture
def setup(tmp_path, mlflow_db):
    uri = f"sqlite:///{mlflow_db}"
    experiment = ensure_experiment(uri, "rec", artifact_root=tmp_path / "artifacts")
    runs = sync_runs(uri, experiment, [PlannedRun(TRIAL, "fp", {}, {"seed": 0})])
    store = StageStore(tmp_path / "stages")
    state = write_state(tmp_path / "mlflow_runs.json", uri, runs, {TRIAL: "fp"}, {TRIAL: STAGES},
                        {TRIAL: str(store.root)})
    return SimpleNamespace(uri=uri, run_id=runs[TRIAL], store=store, state=state, client=MlflowClient(uri))


def finish_stage(store: StageStore, generation: int) -> None:
    key = dict(STAGES)[generation]
    store.save(key, {"metrics": {"test_macro_f1": 70.0 + generation, "test_ece": 5.0 - generation}}, None, {})


def trial():
    return SimpleNamespace(config={"trial": TRIAL})


def test_logs_each_finished_generation_once_and_in_order(setup):
    recorder = RunRecorder(setup.state)
    finish_stage(setup.store, 1)
    finish_stage(setup.store, 3)  # generation 3 cannot be logged before generation 2
    recorder.on_trial_result(0, [], trial(), {})
    assert recorder.flush(30)  # the hooks queue the work for the driver's writer thread
    history = setup.client.get_metric_history(setup.run_id, "test_macro_f1")
    assert [(m.step, m.value) for m in history] == [(1, 71.0)]
    finish_stage(setup.store, 2)
    for _ in range(3):  # a retried or restored trial reports again: nothing is logged twice
        RunRecorder(setup.state).on_trial_result(0, [], trial(), {})
    assert recorder.flush(30)
    history = setup.client.get_metric_history(setup.run_id, "test_macro_f1")
    assert sorted((m.step, m.value) for m in history) == [(1, 71.0), (2, 72.0), (3, 73.0)]


def test_a_trial_stopped_before_its_last_generation_is_not_finished(setup):
    """Tune calls on_trial_complete for trials that Ctrl-C stopped: FINISHED needs every generation."""
    recorder = RunRecorder(setup.state)
    recorder.on_trial_start(0, [], trial())
    finish_stage(setup.store, 1)
    recorder.on_trial_complete(0, [], trial())
    assert recorder.flush(30)
    assert setup.client.get_run(setup.run_id).info.status == "RUNNING"  # the sweep marks it KILLED
    finish_stage(setup.store, 2)
    finish_stage(setup.store, 3)
    recorder.on_trial_complete(0, [], trial())
    assert recorder.flush(30)
    assert setup.client.get_run(setup.run_id).info.status == "FINISHED"
    # and the trial's F1 / ECE over its generations as one picture, for the MLflow UI
    names = {a.path for a in setup.client.list_artifacts(setup.run_id)}
    assert {"summary.png", "summary.json"} <= names


def test_a_failed_trial_keeps_what_it_finished(setup):
    finish_stage(setup.store, 1)
    recorder = RunRecorder(setup.state)
    recorder.on_trial_error(0, [], trial())
    assert recorder.flush(30)
    run = setup.client.get_run(setup.run_id)
    assert run.info.status == "FAILED" and run.data.metrics["test_macro_f1"] == 71.0


def test_mlflow_trouble_is_a_warning_not_a_stopped_sweep(setup, tmp_path, caplog):
    broken = write_state(tmp_path / "broken.json", "sqlite:///" + str(tmp_path / "no" / "such" / "dir" / "m.db"),
                         {TRIAL: setup.run_id}, {TRIAL: "fp"}, {TRIAL: STAGES}, {TRIAL: str(setup.store.root)})
    finish_stage(setup.store, 1)
    with caplog.at_level(logging.WARNING):
        RunRecorder(broken).on_trial_result(0, [], trial(), {})  # queued: returns at once
        assert not RunRecorder(broken).flush(3)  # the writer keeps it and tries again
        RunRecorder(broken).catch_up_all()
    assert "MLflow: could not" in caplog.text and TRIAL in caplog.text
    assert RunRecorder(broken).pending_error()


def test_tune_pickles_only_the_state_path(setup):
    """Tune stores callbacks with the experiment; a resumed sweep rewrites the state file, so the
    restored callback must read the new one, not carry old run ids."""
    recorder = RunRecorder(setup.state)
    recorder.on_trial_start(0, [], trial())
    restored = pickle.loads(pickle.dumps(recorder))
    assert vars(restored) == vars(RunRecorder(setup.state))


def test_after_the_sweep_a_complete_trial_is_finished_and_an_incomplete_one_is_not(setup):
    """catch_up_all needs no callback history: a restored experiment made before the recorder
    existed has none, and its finished trials must not end up KILLED."""
    finish_stage(setup.store, 1)
    RunRecorder(setup.state).catch_up_all()
    assert setup.client.get_run(setup.run_id).info.status == "SCHEDULED"  # the sweep marks it KILLED
    finish_stage(setup.store, 2)
    finish_stage(setup.store, 3)
    RunRecorder(setup.state).catch_up_all()
    run = setup.client.get_run(setup.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["test_macro_f1"] == 73.0


def test_a_generation_written_again_after_a_cut_off_write_is_stored_once(setup):
    """A server that dies between a generation's batches gets the whole generation again on the
    next try; with the stage's stored time as every metric's timestamp the repeat adds nothing."""
    finish_stage(setup.store, 1)
    recorder = RunRecorder(setup.state)
    assert recorder.catch_up(TRIAL) is False  # generations 2 and 3 are not stored yet
    recorder._logged[TRIAL].discard(1)  # as if the probe metric's batch had been cut off: written again
    recorder.catch_up(TRIAL)
    for metric in ("test_macro_f1", "test_ece"):
        assert [m.step for m in setup.client.get_metric_history(setup.run_id, metric)] == [1]
