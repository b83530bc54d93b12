"""Faults: a trial's process killed mid-generation resumes at that generation; a driver killed
with SIGKILL resumes with --resume, re-trains nothing finished and keeps one MLflow run per trial."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.faults import TrialKiller
from tests.test_sweep_e2e import mlflow_runs, run_sweep, tiny_spec


@pytest.fixture(scope="module")
def faulty_sweep(tmp_path_factory, tiny_model, data_root):
    """One sweep, two faults side by side (one sweep's start-up, not two): the healthy dataset's
    csd trial is killed mid-generation 2 and restarts; isear_hot's lr makes its trial diverge."""
    workdir = tmp_path_factory.mktemp("faults")
    spec = {**tiny_spec(tiny_model, "fault"), "methods": ["csd"], "generations": 3,
            "datasets": ["isear", {"name": "isear_hot", "source": "isear", "train": {"lr": 1.0e4}}]}
    path = workdir / "fault.yaml"
    path.write_text(yaml.safe_dump(spec))
    with TrialKiller(workdir / "runs" / "fault" / "stages", "isear-csd-seed0", generation=2) as killer:
        out = run_sweep(workdir, path, data_root)
    return workdir, out, killer


@pytest.mark.slow
def test_trial_killed_mid_generation_resumes_at_that_generation(faulty_sweep):
    tmp_path, out, killer = faulty_sweep
    assert "1 trial(s) failed" in out.stderr  # isear_hot's (test_a_diverging_trial_...), not this one
    stages = tmp_path / "runs" / "fault" / "stages"
    assert killer.killed is not None, killer.missed  # the trial's process was SIGKILLed while generation 2 ran
    trained = (stages / "trained.log").read_text().split()
    assert [k[:2] for k in trained] == ["g1", "g2", "g3"]  # generation 1 was not trained again
    client, runs = mlflow_runs(tmp_path, "fault")
    (run,) = [r for r in runs if r.data.tags["dataset"] == "isear"]
    assert run.info.status == "FINISHED"
    for metric in ("test_macro_f1", "test_ece_ts", "ood_ft3_ece"):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, metric)) == [1, 2, 3]


@pytest.mark.slow
def test_driver_sigkill_then_resume(tmp_path, tiny_model, data_root):
    spec = {**tiny_spec(tiny_model, "killed"), "methods": ["ce", "csd"]}  # 2 trials sharing g1: 2 stages
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(spec))
    log = tmp_path / "runs" / "killed" / "stages" / "trained.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.sweep", str(path), "--data-root", str(data_root),
                             "--output", str(tmp_path / "runs"), "--num-cpus", "2", "--no-dashboard"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (log.exists() and log.read_text().split()):
            time.sleep(0.2)
        assert log.exists(), "the sweep trained nothing before the deadline"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and every process of its session
        proc.wait()
    before = log.read_text().split()
    assert len(before) == 1  # killed part-way: g1 (ce's, and csd's teacher) stored, csd's g2 not

    out = run_sweep(tmp_path, path, data_root, "--resume")
    assert out.returncode == 0, out.stderr[-5000:]
    after = log.read_text().split()
    assert after[: len(before)] == before and len(after) == len(set(after)) == 2  # nothing finished re-trained
    client, runs = mlflow_runs(tmp_path, "killed")
    assert sorted(r.info.run_name for r in runs) == ["isear-ce-seed0", "isear-csd-seed0"]
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "test_macro_f1")]
        assert sorted(steps) == list(range(1, int(run.data.tags["generations"]) + 1))
        assert run.info.status == "FINISHED"


@pytest.mark.slow
def test_a_diverging_trial_fails_clearly_and_the_others_finish(faulty_sweep):
    tmp_path, out, _ = faulty_sweep
    assert out.returncode == 1
    assert "1 trial(s) failed" in out.stderr and "isear_hot-csd-seed0" in out.stderr
    assert "diverged" in (out.stdout + out.stderr)
    stages = tmp_path / "runs" / "fault" / "stages"
    trained = (stages / "trained.log").read_text().split()
    assert len(trained) == len(set(trained)) == 3  # the healthy trial's; the diverging one was not retrained on retry
    assert len(list(stages.glob("*.diverged"))) == 1
    client, runs = mlflow_runs(tmp_path, "fault")
    status = {r.data.tags["dataset"]: r.info.status for r in runs}
    assert status == {"isear": "FINISHED", "isear_hot": "FAILED"}


@pytest.mark.slow
def test_sigterm_or_ctrl_c_says_interrupted_and_leaves_no_run_running(tmp_path, tiny_model, data_root):
    """SIGTERM (kill, a batch scheduler, docker stop) mid-sweep: exit 130 with the --resume command,
    and no MLflow run left RUNNING or SCHEDULED (they are KILLED), so nobody mistakes a stopped sweep
    for a live one. The sweep turns SIGTERM into SIGINT, so this is Ctrl-C's path too (one sweep,
    not two, in the suite's time)."""
    stop = signal.SIGTERM
    spec = {**tiny_spec(tiny_model, "interrupted"), "methods": ["ce", "csd"], "seeds": [0, 1], "generations": 3}
    path = tmp_path / "interrupted.yaml"
    path.write_text(yaml.safe_dump(spec))
    log = tmp_path / "runs" / "interrupted" / "stages" / "trained.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.sweep", str(path), "--data-root", str(data_root),
                             "--output", str(tmp_path / "runs"), "--num-cpus", "2", "--no-dashboard"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 2):
            time.sleep(0.5)
        assert log.exists(), "the sweep trained nothing before the deadline"
        proc.send_signal(stop)
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr[-3000:]
    assert "Interrupted" in stderr and "--resume" in stderr
    _, runs = mlflow_runs(tmp_path, "interrupted")
    assert runs and all(r.info.status in ("FINISHED", "KILLED") for r in runs)
    assert any(r.info.status == "KILLED" for r in runs)
