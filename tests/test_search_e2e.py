"""A real search through Ray Tune, Optuna, ASHA and MLflow on capped ISEAR with a tiny encoder,
whose driver is SIGKILLed mid-search and resumed with --resume.

One search serves every test (the suite's time): Optuna's TPE over a MixUp teacher's alpha and
a CSD student's scaling, ASHA over 2 generations, 4 samples, 2 at once. The driver is killed once
a sample has finished (all its stages stored), then resumed to the end and the confirm step.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

NUM_SAMPLES = 4


def search_spec(model: str) -> dict:
    return {
        "name": "tiny_search", "model": model, "max_length": 32, "seeds": [0], "generations": 2,
        "methods": ["sim_mixup_csd"], "data": {"max_train": 120, "max_eval": 60},
        # no OOD fine-tuning: the suite's time (the Sim-MixUp teachers still read the CE data map)
        "datasets": [{"name": "isear", "ood_finetune": False}],
        "train": {"epochs": 1, "batch_size": 16, "lr": 3e-3}, "ood": {"percents": [1], "epochs": 1},
        "resources": {"cpus_per_trial": 1},
        "search": {"params": {"teacher.alpha": {"choice": [0.2, 1.0, 5.0]},
                              "distill.scale_student": {"choice": [False, True]}},
                   "algorithm": "optuna", "scheduler": {"kind": "asha", "grace_period": 1, "reduction_factor": 2},
                   "num_samples": NUM_SAMPLES, "max_concurrent": 2,
                   "objective": {"metric": "val_ece_ts", "mode": "min", "max_f1_drop": 1.0}},
    }


def _command(spec_path: Path, data_root: Path, workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.sweep", str(spec_path), "--data-root", str(data_root),
            "--runs", str(workdir / "runs"), "--num-cpus", "2", "--no-dashboard", *extra]


def _env(workdir: Path) -> dict:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}", "RAY_DEDUP_LOGS": "0"}


def _tune_trials(run: Path) -> dict[str, list[dict]]:
    """Tune's own record: trial id -> its reports, in order."""
    out = {}
    for result in (run / "tune" / "trials").glob("*/result.json"):
        out[result.parent.name] = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    return out


def _a_sample_finished(run: Path) -> bool:
    """Whether the store holds every stage of some sample the driver registered (the stages are the truth)."""
    try:
        samples = json.loads((run / "search_state.json").read_text())["trials"].values()
    except (OSError, ValueError):
        return False
    return any(all((run / "stages" / k / "result.json").is_file() for _, k in t["stages"]) for t in samples)


def _failed(run: Path) -> list[str]:
    return json.loads((run / "search_state.json").read_text()).get("failed", [])


@pytest.fixture(scope="module")
def search(tmp_path_factory, tiny_model, data_root):
    workdir = tmp_path_factory.mktemp("search")
    spec_path = workdir / "tiny_search.yaml"
    spec_path.write_text(yaml.safe_dump(search_spec(tiny_model)))
    run = workdir / "runs" / "tiny_search"
    proc = subprocess.Popen(_command(spec_path, data_root, workdir), cwd=workdir, env=_env(workdir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not _a_sample_finished(run):
            time.sleep(0.2)
        if not _a_sample_finished(run):
            pytest.fail("no sample of the search finished in 300 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and every process of its session
        proc.wait()
    stages = run / "stages"
    before = {"killed_at": time.time(), "trained": (stages / "trained.log").read_text().split(), "reports": _tune_trials(run),
              "stored": {p.name for p in stages.iterdir() if (p / "result.json").is_file()},
              "samples": json.loads((run / "search_state.json").read_text())["trials"]}
    out = subprocess.run(_command(spec_path, data_root, workdir, "--resume"), cwd=workdir, env=_env(workdir),
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return workdir, run, before, out


def _samples(workdir: Path):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tiny_search")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`emocal.status` = 'current'")
    return client, [r for r in runs if r.data.tags.get("emocal.search.role") == "sample"], \
        [r for r in runs if r.data.tags.get("emocal.search.role") == "parent"]


@pytest.mark.slow
def test_the_resumed_search_ran_every_sample_once_and_lost_none(search):
    _, run, before, _ = search
    trained = (run / "stages" / "trained.log").read_text().split()
    assert trained[: len(before["trained"])] == before["trained"]  # nothing finished lost
    assert len(trained) == len(set(trained))  # no stage trained twice
    after = _tune_trials(run)
    assert len(after) == NUM_SAMPLES  # the restored searcher knew how many it had suggested
    finished_before = [t for t, s in before["samples"].items() if all(k in before["stored"] for _, k in s["stages"])]
    assert finished_before, before  # the kill came after at least one sample finished (its stages are the truth)
    # no report made after the kill trained a stage stored before it (Tune's result.json is buffered:
    # a report from before the kill may reach it only after the resume, with its own timestamp)
    retrained = [r["stage"] for rows in after.values() for r in rows
                 if r["stage_trained"] and r["timestamp"] > before["killed_at"] and r["stage"] in before["stored"]]
    assert not retrained
    for trial, rows in before["reports"].items():  # what Tune had recorded stays (it may replay a report)
        assert after[trial][: len(rows)] == rows
    assert not _failed(run), _failed(run)  # no sample failed to restore


@pytest.mark.slow
def test_the_restored_searcher_and_scheduler_keep_every_sample(search):
    """Tune restores the searcher; the scheduler's rungs are ours to restore (orchestrator/tuning.py,
    SchedulerState): every sample that reported a generation is in that rung after the resume."""
    import ray.cloudpickle as cloudpickle
    from optuna.trial import TrialState

    _, run, before, _ = search
    trials = run / "tune" / "trials"
    searcher = cloudpickle.loads(sorted(trials.glob("searcher-state-*.pkl"))[-1].read_bytes())
    study = searcher["_ot_study"]
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == NUM_SAMPLES == len(study.trials)  # the samples before the kill are in the study too
    callbacks = cloudpickle.loads(sorted(trials.glob("callback-states-*.pkl"))[-1].read_bytes())
    (asha,) = [s["scheduler"] for s in callbacks.values() if isinstance(s, dict) and "scheduler" in s]
    rungs = {milestone: recorded for milestone, recorded in asha["_brackets"][0]._rungs}
    reports = _tune_trials(run)
    for trial, rows in reports.items():
        for r in rows:
            if r["generation"] in rungs:
                assert trial in rungs[r["generation"]], (trial, r["generation"], rungs)
    assert {t for t, rows in before["reports"].items() if rows} <= set(rungs[1])


@pytest.mark.slow
def test_every_sample_is_an_mlflow_run_of_the_search_with_its_options(search):
    workdir, run, _, _ = search
    client, samples, parents = _samples(workdir)
    (parent,) = parents
    assert parent.info.status == "FINISHED" and parent.data.params["algorithm"] == "optuna"
    # a sample begun after Tune's last saved state is not in the restored search: superseded, never current
    exp = client.get_experiment_by_name("tiny_search")
    for r in client.search_runs([exp.experiment_id], filter_string="tags.`emocal.status` = 'superseded'"):
        assert r.info.status == "KILLED" and "restored searcher" in r.data.tags["emocal.superseded_reason"]
    assert len(samples) == NUM_SAMPLES
    stops = json.loads((run / "search_stops.json").read_text()) if (run / "search_stops.json").exists() else {}
    for r in samples:
        tags, params = r.data.tags, r.data.params
        assert tags["mlflow.parentRunId"] == parent.info.run_id and r.info.status == "FINISHED"
        assert params["teacher.alpha"] in ("0.2", "1.0", "5.0") and params["distill.scale_student"] in ("False", "True")
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "test_macro_f1")]
        assert len(steps) == len(set(steps))  # each generation logged once, also across the kill
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val_nll")] == sorted(steps)
        if tags["emocal.search.outcome"] == "completed":  # (a stop Tune's last saved state missed is undone)
            assert sorted(steps) == [1, 2]
        else:
            assert tags["emocal.search.stopped"] == "true" and tags["emocal.search.outcome"].startswith("stopped")
            assert len(steps) == stops[tags["emocal.search.sample"]] < 2


@pytest.mark.slow
def test_the_samples_shared_their_ce_teacher_and_the_report_names_the_choice(search):
    _, run, _, out = search
    report = (run / "search_report.md").read_text()
    assert "Chosen on validation: s" in report and "(chosen)" in report and "Stopped by ASHA:" in report
    trained = (run / "stages" / "trained.log").read_text().split()
    reports = _tune_trials(run)
    generations = sum(rows[-1]["generation"] for rows in reports.values())
    # one CE teacher (the data map of every Sim-MixUp teacher and the F1 baseline), teachers per alpha
    assert len(trained) < NUM_SAMPLES * 2 and len(trained) < generations + 1
    # and shared at the claim, not only deduplicated by the store: each generation trained by one sample
    trainings = [r["stage"] for rows in reports.values() for r in rows if r["stage_trained"]]
    assert len(trainings) == len(set(trainings)) and set(trainings) <= set(trained), trainings
    assert f"{len(trained)} trained" in report
    front = json.loads((run / "search_front.json").read_text())
    assert len(front["points"]) == NUM_SAMPLES and front["front"] and front["chosen"] in front["points"]
    assert (run / "search_front.png").stat().st_size > 10_000
    # the confirm step: CE and the chosen configuration on every seed, in the paper's layout
    assert "ID test (Table 1 layout)" in report and "| sim_mixup_csd_best |" in report and "| ce |" in report
    assert "Chosen on validation" in out.stdout


@pytest.mark.slow
def test_no_test_or_ood_metric_reaches_the_searcher_or_the_scheduler(search):
    _, run, _, _ = search
    for rows in _tune_trials(run).values():
        for r in rows:
            assert not [k for k in r if k.startswith(("test_", "ood_"))], sorted(r)


@pytest.mark.slow
def test_the_plan_of_a_search_says_what_the_samples_so_far_shared(search, data_root, capsys):
    from orchestrator.cli import main

    workdir, run, _, _ = search
    trained = (run / "stages" / "trained.log").read_text().split()
    assert main(["plan", str(workdir / "tiny_search.yaml"), "--data-root", str(data_root),
                 "--runs", str(workdir / "runs")]) == 0
    out = capsys.readouterr().out
    assert "search tiny_search: optuna, 4 samples of sim_mixup_csd on isear" in out
    assert f"so far: {NUM_SAMPLES} samples" in out and f"{len(trained)} trained" in out
