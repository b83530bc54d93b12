"""A real Ray cluster on this machine, shaped as docker/compose.yaml's: `ray start --head` that
only schedules (no CPUs) and two `ray start --address` workers of one CPU each, on 127.0.0.1. A
small sweep joins it with --address; weights must cross between the nodes through the object
store and the results must be complete. Then a worker node is lost mid-stage (issue 27): every
process of it SIGKILLed while one of its trials trains; the sweep must finish as if nothing had
happened."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import report_rows
from tests.faults import ClaimWatch, trials_s
from tests.test_sweep_e2e import free_port, mlflow_runs, tiny_spec

RAY = str(Path(sys.executable).with_name("ray"))


def _start_node(args: list[str], tmp_path: Path, name: str, env: dict) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([RAY, "start", "--block", "--object-store-memory", str(200 * 2**20),
                             "--disable-usage-stats", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    """End a node we started, by its process group (never by name: other Ray instances may run)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)  # a draining node waits up to 30 s for nothing here: its group is killed
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def cluster_env():
    """Ray 2.5x clusters started with `ray start` require a token; every process gets the same one.
    The head declares a node dead after 4 missed health checks 1 s apart (Ray's defaults, 5 of
    3 s, would add ~10 s to the node-loss test and change nothing else; shorter ones declared busy
    nodes of a loaded 2-core machine dead)."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "4"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, cluster_env):
    """A head without CPUs and two one-CPU workers: (address, {worker name: its `ray start` process})."""
    tmp_path = tmp_path_factory.mktemp("cluster")
    port = free_port()
    env = cluster_env
    head = _start_node(["--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                        "--include-dashboard", "false", "--num-cpus", "0"], tmp_path, "head", env)
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        _wait_nodes(address, env, 1, tmp_path / "head.log")  # the head's GCS first
        workers = {}
        for name in ("worker-a", "worker-b"):  # one at a time: a loaded machine registers them slowly
            workers[name] = _start_node(["--address", address, "--node-ip-address", "127.0.0.1", "--num-cpus", "1"],
                                        tmp_path, name, env)
            nodes.append(workers[name])
            _wait_nodes(address, env, len(nodes), tmp_path / f"{name}.log")
        yield address, workers
    finally:
        for proc in reversed(nodes):
            _stop(proc)


def _wait_nodes(address: str, env: dict, count: int, log: Path, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        out = subprocess.run([RAY, "status", "--address", address], capture_output=True, text=True, env=env)
        if out.returncode == 0 and out.stdout.count("node_") >= count:
            return
        time.sleep(1)
    pytest.fail(f"{count} node(s) did not join in {timeout_s:.0f} s:\n" + log.read_text()[-2000:])


@pytest.fixture(scope="module")
def two_nodes(cluster):
    return cluster[0]


@pytest.mark.slow
def test_sweep_on_a_two_node_cluster(tmp_path, tiny_model, data_root, two_nodes, cluster_env):
    spec = {**tiny_spec(tiny_model, "cluster"), "methods": ["ce", "csd"],
            "resources": {"cpus_per_trial": 1, "placement_strategy": "SPREAD", "max_concurrent_trials": 1}}
    # one trial at a time: csd then finds the CE teacher finished and hands its weights from the
    # trial's node (its 0.01-CPU bundle) to the student task on the other node (SPREAD)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**cluster_env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "orchestrator.sweep", str(path), "--data-root", str(data_root),
                          "--output", str(tmp_path / "runs"), "--address", two_nodes],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "cluster check: 3 node(s) see the run folder" in out.stdout  # the head too
    print(f"\nfigures: undisturbed cluster sweep {time.perf_counter() - started:.1f} s, trials phase "
          f"{trials_s(tmp_path / 'runs' / 'cluster'):.1f} s")

    reports = []
    for result in (tmp_path / "runs" / "cluster" / "tune" / "trials").glob("*/result.json"):
        reports += [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    task_nodes = {r["task_node"] for r in reports if r.get("task_node")}
    crossed = [r for r in reports if r.get("weights_node") and r.get("task_node")
               and r["weights_node"] != r["task_node"]]
    assert len(task_nodes | {r["weights_node"] for r in crossed}) == 2, reports
    assert crossed, "no generation took its teacher's weights from the other node"

    client, runs = mlflow_runs(tmp_path, "cluster")
    assert sorted(r.data.tags["method"] for r in runs) == ["ce", "csd"]
    for run in runs:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "ood_ft3_ece"))
        assert steps == list(range(1, int(run.data.tags["generations"]) + 1))


def _tree(root: int) -> list[int]:
    """`root` and every process descended from it, from /proc (a node's raylet, its workers, ...)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


class LoseNode(ClaimWatch):
    """When the trial claims the generation, SIGKILL every process of the worker node it runs on:
    the node's `ray start`, raylet, object store and workers, by pid, as a machine that dies."""

    def __init__(self, stages: Path, workers: dict[str, subprocess.Popen], trial_key: str, generation: int):
        super().__init__(stages, trial_key, generation)
        self.workers = workers
        self.lost: str | None = None  # the worker node lost
        self.killed: list[int] = []
        self.claimed_by: int | None = None

    def on_claim(self, pid: int, lock: Path) -> None:
        self.claimed_by = pid
        for name, proc in self.workers.items():
            tree = _tree(proc.pid)
            if pid in tree:
                for p in tree:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
                proc.wait()
                self.lost, self.killed = name, tree
                return
        self.missed = f"the claiming process {pid} is on no worker node"


class Outage(ClaimWatch):
    """Kill the MLflow server when the claim is seen; start it again once `stages_done` stages are stored."""

    def __init__(self, stages: Path, server, trial_key: str, generation: int, stages_done: int):
        super().__init__(stages, trial_key, generation)
        self.server, self.stages_done = server, stages_done
        self.down_at = self.up_at = None  # time.time() of the stop, and of the server answering again
        self.stored_while_down: list[str] = []

    def on_claim(self, pid: int, lock: Path) -> None:
        self.server.stop(crash=True)
        self.down_at = time.time()
        log = self.stages / "trained.log"
        deadline = time.time() + 180  # two tiny stages take well under a minute, without MLflow too
        while time.time() < deadline and not self._stop.is_set():
            done = log.read_text().split() if log.exists() else []
            if len(done) >= self.stages_done:
                self.stored_while_down = done  # training went on without MLflow
                break
            time.sleep(0.2)
        self.server.start()
        self.up_at = time.time()


@pytest.fixture(scope="module")
def faulty_cluster_sweep(tmp_path_factory, tiny_model, data_root, cluster, cluster_env, mlflow_server):
    """One sweep on the cluster, two faults side by side (one sweep's start-up, not two): MLflow is
    compose.yaml's server on PostgreSQL with basic-auth, the sweep authenticated by environment;
    the server is killed when the first stage starts and started again once that stage is stored
    (its restart overlaps the second stage), and the csd trial's node is lost while it trains
    generation 2."""
    tmp_path = tmp_path_factory.mktemp("lost")
    address, workers = cluster
    spec = {**tiny_spec(tiny_model, "lost"), "methods": ["ce", "csd"],
            "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 1}}
    path = tmp_path / "lost.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**cluster_env, **mlflow_server.client_env()}
    stages = tmp_path / "runs" / "lost" / "stages"
    started = time.time()
    with Outage(stages, mlflow_server, "isear-ce-seed0", 1, stages_done=1) as outage, \
            LoseNode(stages, workers, "isear-csd-seed0", generation=2) as loss:
        out = subprocess.run([sys.executable, "-m", "orchestrator.sweep", str(path), "--data-root", str(data_root),
                              "--runs", str(tmp_path / "runs"), "--address", address],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500)
    ended = time.time()
    trials = trials_s(tmp_path / "runs" / "lost") if out.returncode == 0 else float("nan")
    print(f"\nfigures: cluster sweep {ended - started:.1f} s, trials phase {trials:.1f} s; MLflow down {outage.down_at - started:.1f} s to "
          f"{outage.up_at - started:.1f} s in; node {loss.lost} lost {loss.seen_at - started:.1f} s in "
          f"({len(loss.killed)} processes)" if outage.up_at and loss.seen_at else "\nfigures: a fault was missed")
    return tmp_path, out, outage, loss, workers


@pytest.mark.slow
def test_a_worker_node_lost_mid_stage_costs_nothing_but_time(faulty_cluster_sweep, mlflow_server, undisturbed):
    """The csd trial's node dies while it trains generation 2: Tune restarts the trial on the
    surviving node from its last finished generation (1, not trained again), MLflow keeps one run
    per trial with each generation once, and the report is an undisturbed sweep's, cell for cell."""
    tmp_path, out, _, loss, workers = faulty_cluster_sweep
    assert loss.lost, loss.missed
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert all(subprocess.run(["kill", "-0", str(p)], capture_output=True).returncode != 0 for p in loss.killed)
    stages = tmp_path / "runs" / "lost" / "stages"
    trained = (stages / "trained.log").read_text().split()
    assert [k[:2] for k in trained] == ["g1", "g2"]  # g1 once (not trained again), g2 once, after the loss
    assert f"pid {loss.claimed_by}," not in (stages / f"{trained[1]}.lock").read_text()  # claimed again, anew
    reports = [json.loads(line) for line in (tmp_path / "runs" / "lost" / "tune" / "trials" / "isear-csd-seed0" /
                                             "result.json").read_text().splitlines()]
    assert [r["generation"] for r in reports] == [1, 2]  # the restarted trial resumed after generation 1
    assert reports[0]["pid"] == loss.claimed_by != reports[1]["pid"]
    survivor = next(proc for name, proc in workers.items() if name != loss.lost)
    assert survivor.poll() is None
    client, runs = _runs(mlflow_server, "lost")
    assert sorted(r.data.tags["method"] for r in runs) == ["ce", "csd"]
    assert report_rows(tmp_path / "runs" / "lost") == undisturbed  # cell for cell


def _runs(server, name: str):
    """The experiment's runs on the server (the test process has the credentials: tests/services.py)."""
    from mlflow import MlflowClient

    client = MlflowClient(server.uri)
    return client, client.search_runs([client.get_experiment_by_name(name).experiment_id])


@pytest.mark.slow
def test_the_tracking_server_away_mid_sweep_never_stops_training_and_misses_nothing(faulty_cluster_sweep,
                                                                                    mlflow_server):
    """Killed as the first stage starts, started again once it is stored: training went on without
    it, the driver's writer caught up when it was back, the sweep finished, and MLflow holds every
    generation's metrics and artifacts exactly once."""
    tmp_path, out, outage, _, _ = faulty_cluster_sweep
    assert outage.down_at and outage.up_at, outage.missed
    assert len(outage.stored_while_down) >= 1  # a stage stored while the server was away
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "MLflow: recording again" in out.stderr  # the driver's writer caught up once the server was back
    client, runs = _runs(mlflow_server, "lost")
    for run in runs:
        assert run.info.status == "FINISHED"
        generations = int(run.data.tags["generations"])
        for metric in ("test_macro_f1", "test_ece_ts", "ood_ft3_ece", "val_macro_f1"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
            assert sorted(steps) == list(range(1, generations + 1)), (metric, steps)  # each exactly once
        for g in range(1, generations + 1):
            files = [a.path for a in client.list_artifacts(run.info.run_id, f"gen{g}")]
            assert f"gen{g}/reliability_test.png" in files and len(files) == len(set(files))
