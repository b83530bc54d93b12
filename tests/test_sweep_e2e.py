"""A real sweep through Ray Tune on real ISEAR / Emotion-Stimulus text with a tiny encoder.

Checks what a user relies on: one MLflow run per trial with every generation's metrics and
the OOD percentages, shared stages trained once, the report printed and written, and a
resume that re-trains nothing and duplicates nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["ce", "csd", "sim_mixup_csd"]
PER_GENERATION = ["val_macro_f1", "val_weighted_f1", "val_ece", "val_ece_ts", "test_macro_f1", "test_weighted_f1",
                  "test_ece", "test_ece_ts", "temperature", "ood_macro_f1", "ood_ece",
                  "ood_ft1_macro_f1", "ood_ft1_ece", "ood_ft3_macro_f1", "ood_ft3_ece"]


def tiny_spec(model: str, name: str = "e2e") -> dict:
    return {
        "name": name, "model": model, "max_length": 32, "seeds": [0], "generations": 2, "methods": METHODS,
        "datasets": ["isear"], "data": {"max_train": 48, "max_eval": 30},
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3}, "ood": {"percents": [1, 3], "epochs": 1},
        "resources": {"cpus_per_trial": 1},
    }


def run_sweep(workdir: Path, spec_path: Path, data_root: Path, *extra: str, timeout: int = 400):
    # relative, as in a newcomer's shell: it means the driver's folder, never a trial's own
    env = {**os.environ, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db", "RAY_DEDUP_LOGS": "0"}
    return subprocess.run([sys.executable, "-m", "orchestrator.sweep", str(spec_path), "--data-root", str(data_root),
                           "--output", str(workdir / "runs"), "--num-cpus", "2", "--no-dashboard", *extra],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def mlflow_runs(workdir: Path, name: str):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(name)
    return client, client.search_runs([exp.experiment_id])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model, data_root):
    workdir = tmp_path_factory.mktemp("sweep")
    spec_path = workdir / "e2e.yaml"
    # each trial on a quarter of one GPU that Ray advertises and this machine lacks: the GPU path
    # (placement, one-shot workers, what each task saw) runs, and training falls back to the CPU
    spec_path.write_text(yaml.safe_dump({**tiny_spec(tiny_model), "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0.25}}))
    out = run_sweep(workdir, spec_path, data_root, "--num-gpus", "1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return workdir, spec_path, out


def tune_reports(workdir: Path, name: str) -> list[dict]:
    reports = []
    for result in (workdir / "runs" / name / "tune" / "trials").glob("*/result.json"):
        reports += [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    return reports


@pytest.mark.slow
def test_each_trained_stage_reports_the_gpu_ray_gave_it(sweep):
    workdir, _, _ = sweep
    trained = [r for r in tune_reports(workdir, "e2e") if r["stage_trained"]]
    assert trained and all(r["task_gpu_ids"] == "0" and r["task_device"] == "cpu" for r in trained), trained


@pytest.mark.slow
def test_a_trial_takes_over_a_finished_trials_actor(sweep):
    """A new actor per trial imports Tune, MLflow, torch and the trainables: ~14 s a trial here
    (issue 14). Three trials in two slots: the third runs in an actor a finished one left."""
    workdir, _, _ = sweep
    pids = {r["trial_id"]: r["pid"] for r in tune_reports(workdir, "e2e")}
    assert len(pids) == len(METHODS) and len(set(pids.values())) < len(METHODS), pids


@pytest.mark.slow
def test_every_trial_and_generation_lands_in_mlflow(sweep):
    workdir, _, _ = sweep
    client, runs = mlflow_runs(workdir, "e2e")
    assert sorted(r.data.tags["method"] for r in runs) == sorted(METHODS)
    for run in runs:
        tags = run.data.tags
        assert tags["seed"] == "0" and tags["dataset"] == "isear" and run.info.status == "FINISHED"
        generations = 1 if tags["method"] == "ce" else 2
        for metric in PER_GENERATION:
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))
            assert steps == list(range(1, generations + 1)), (tags["method"], metric, steps)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "gen1")}
        assert {"gen1/reliability_test.png", "gen1/confusion_test.png", "gen1/temperature_curve.png"} <= artifacts


@pytest.mark.slow
def test_shared_stages_are_trained_once(sweep):
    workdir, _, _ = sweep
    trained = (workdir / "runs" / "e2e" / "stages" / "trained.log").read_text().split()
    # ce g1 (also the data map, shared by all three), csd g2, sim g1, sim+csd g2
    assert len(trained) == len(set(trained)) == 4


@pytest.mark.slow
def test_progress_says_stages_done_of_planned_in_the_reports_and_the_terminal(sweep):
    workdir, _, out = sweep
    reports = tune_reports(workdir, "e2e")
    assert all(r["stages_planned"] == 4 and 1 <= r["stages_done"] <= 4 for r in reports)
    assert max(r["stages_done"] for r in reports) == 4
    assert "progress: 0 of 4 stages done" in out.stdout and "progress: 4 of 4 stages done" in out.stdout
    assert "disk check: the stage store needs an estimated" in out.stdout  # checked before Ray started


@pytest.mark.slow
def test_report_is_printed_and_written(sweep):
    workdir, _, out = sweep
    assert "F1 macro (weighted)" in out.stdout and "mlflow ui" in out.stdout
    report = (workdir / "runs" / "e2e" / "report.md").read_text()
    for method in METHODS:
        assert f"| {method} |" in report
    assert (workdir / "runs" / "e2e" / "report.csv").read_text().count("\n") == len(METHODS) + 1
    # the MLflow UI shows the same tables as the experiment's description
    client, _ = mlflow_runs(workdir, "e2e")
    note = client.get_experiment_by_name("e2e").tags["mlflow.note.content"]
    assert "ID test (Table 1 layout)" in note and all(f"| {m} |" in note for m in METHODS)
    # each task's log lines say which trial and generation they belong to
    assert "[isear-csd-seed0 g2] INFO stage" in out.stdout + out.stderr


@pytest.mark.slow
def test_resume_retrains_nothing_and_keeps_one_run_per_trial(sweep, data_root):
    workdir, spec_path, _ = sweep
    log = workdir / "runs" / "e2e" / "stages" / "trained.log"
    before = log.read_text()
    out = run_sweep(workdir, spec_path, data_root, "--resume", "--num-gpus", "1")
    assert out.returncode == 0, out.stderr[-5000:]
    assert log.read_text() == before
    client, runs = mlflow_runs(workdir, "e2e")
    assert len(runs) == len(METHODS)
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "test_macro_f1")) == int(run.data.tags["generations"])


@pytest.mark.slow
def test_changed_spec_is_refused_on_resume(sweep, data_root):
    workdir, spec_path, _ = sweep
    changed = workdir / "changed" / "e2e.yaml"
    changed.parent.mkdir()
    spec = yaml.safe_load(spec_path.read_text())
    spec["train"]["lr"] = 5e-4
    changed.write_text(yaml.safe_dump(spec))
    out = run_sweep(workdir, changed, data_root, "--resume", "--num-gpus", "1")
    assert out.returncode == 2
    assert "changed since the run" in out.stderr and "lr: 0.0005" in out.stderr


@pytest.mark.slow
def test_figures_of_the_reported_generations(sweep, tmp_path, monkeypatch):
    """The three pictures of a run (reliability as reported, per generation, OOD vs %) with their numbers."""
    import json

    from orchestrator import figures

    workdir, _, _ = sweep
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    assert figures.main(["e2e", "--dataset", "isear", "--out", str(tmp_path)]) == 0
    rel = json.loads((tmp_path / "reliability_isear.json").read_text())
    assert [k.split(" ")[0] for k in rel["panels"]] == ["ce", "sim_mixup_csd"]  # ce_ts is not in this sweep
    assert "raw" in next(iter(rel["panels"])) and "T = " in list(rel["panels"])[1]
    gens = json.loads((tmp_path / "generations_isear.json").read_text())["panels"]["ID test ECE (%)"]
    assert gens["csd"]["x"] == [1, 2] and len(gens["csd"]["mean"]) == 2
    ood = json.loads((tmp_path / "ood_percent_isear.json").read_text())["panels"]["OOD test macro F1 (%)"]
    assert all(series["x"] == [0.0, 1.0, 3.0] for series in ood.values())
    assert (tmp_path / "ood_percent_isear.png").stat().st_size > 10_000

def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for servers the tests start)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chromium(*args: str, budget_ms: int = 30000) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1600,1000", f"--virtual-time-budget={budget_ms}"]
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium, *flags, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=120).stdout


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="needs Debian's chromium (.ci/run installs it: apt-get install chromium)")
def test_the_printed_mlflow_link_shows_the_trials_in_a_real_browser(sweep):
    """What a newcomer sees: the link the sweep prints opens the runs view with the trials, in
    headless Chromium against `mlflow server` on the sweep's own store. With EMOCAL_SCREENSHOTS=DIR
    it also saves the README's screenshots there."""
    import re
    import signal
    import urllib.request

    workdir, _, out = sweep
    table = re.search(r"runs:\s+http://127\.0\.0\.1:5000/(\S+)", out.stdout)
    charts = re.search(r"charts:\s+http://127\.0\.0\.1:5000/(\S+)", out.stdout)
    assert table and charts, out.stdout[-2000:]
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                               f"sqlite:///{workdir / 'mlflow.db'}", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(1)
        base = f"http://127.0.0.1:{port}/"

        def listed(dom: str) -> bool:
            return (all(f"isear-{method}-seed0" in dom for method in METHODS)
                    and re.search(r">\s*3\s*</strong>\s*matching runs", dom) is not None)

        for _ in range(3):  # a busy machine can leave the page still loading within one render budget
            dom = _chromium("--dump-dom", base + table.group(1), budget_ms=60000)
            if listed(dom):
                break
        assert listed(dom), "the view should list the 3 current runs by name:\n" + dom[-3000:]
        shots = os.environ.get("EMOCAL_SCREENSHOTS")
        if shots:
            _chromium(f"--screenshot={Path(shots, 'mlflow_runs.png')}", base + table.group(1))
            # the charts draw slowly on a busy CPU: a longer budget, or the picture shows spinners
            _chromium(f"--screenshot={Path(shots, 'mlflow_charts.png')}", base + charts.group(1), budget_ms=90000)
    finally:  # the server and its workers, by their process group
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.mark.slow
def test_a_changed_setting_gives_new_numbers_and_counts_nothing_old(sweep, data_root):
    """Same spec name, a changed training setting and one method fewer, no --resume: new runs with
    the new numbers; every old run superseded, kept in MLflow, and left out of the report."""
    workdir, spec_path, _ = sweep
    _, before = mlflow_runs(workdir, "e2e")
    old = {r.data.tags["method"]: r for r in before if r.data.tags.get("emocal.status") == "current"}
    assert sorted(old) == sorted(METHODS)
    spec = yaml.safe_load(spec_path.read_text())
    spec["train"]["lr"] = 3e-3
    spec["methods"] = ["ce", "csd"]
    changed = workdir / "again" / "e2e.yaml"
    changed.parent.mkdir()
    changed.write_text(yaml.safe_dump(spec))
    out = run_sweep(workdir, changed, data_root, "--num-gpus", "1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]

    _, after = mlflow_runs(workdir, "e2e")
    status = {r.info.run_id: r.data.tags["emocal.status"] for r in after}
    assert all(status[r.info.run_id] == "superseded" for r in old.values())
    new = {r.data.tags["method"]: r for r in after if status[r.info.run_id] == "current"}
    assert sorted(new) == ["ce", "csd"] and not set(r.info.run_id for r in new.values()) & set(status_old := {
        r.info.run_id for r in old.values()})
    assert len(status_old) == len(METHODS)
    report_dir = workdir / "runs" / "e2e"
    text = (report_dir / "report.md").read_text()
    assert "| sim_mixup_csd |" not in text and f"Skipped {len(METHODS)} MLflow run(s)" in text
    import csv

    rows = {r["method"]: r for r in csv.DictReader(open(report_dir / "report.csv"))}
    assert sorted(rows) == ["ce", "csd"]
    ce_new, ce_old = new["ce"].data.metrics["test_ece"], old["ce"].data.metrics["test_ece"]
    assert ce_new != ce_old  # the lr changed the CE teacher
    assert float(rows["ce"]["id_ece"]) == pytest.approx(ce_new)


@pytest.mark.slow
def test_a_spec_asking_for_gpus_ray_lacks_is_refused_before_anything_starts(tmp_path, tiny_model, data_root):
    """Otherwise every trial waits for ever for a GPU that is not there."""
    spec_path = tmp_path / "gpu.yaml"
    spec_path.write_text(yaml.safe_dump({**tiny_spec(tiny_model, "gpu"), "resources": {"gpus_per_trial": 0.5}}))
    out = run_sweep(tmp_path, spec_path, data_root, timeout=120)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-3000:]
    assert "resources.gpus_per_trial is 0.5 but the Ray instance has 0 GPU(s)" in out.stderr
    assert "gpus_per_trial: 0" in out.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "runs" / "gpu" / "stages").exists()
