"""A real two-node Ray cluster on this machine: `ray start --head` and a second `ray start
--address` worker on 127.0.0.1. A small sweep joins it with --address; weights must cross
between the nodes through the object store and the results must be complete."""
from __future__ import annotations

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

from tests.test_sweep_e2e import free_port, mlflow_runs, tiny_spec

RAY = str(Path(sys.executable).with_name("ray"))


def _start_node(args: list[str], tmp_path: Path, name: str, env: dict) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([RAY, "start", "--block", "--num-cpus", "1", "--object-store-memory", str(200 * 2**20),
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


@pytest.fixture
def cluster_env():
    """Ray 2.5x clusters started with `ray start` require a token; every process gets the same one."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture
def two_nodes(tmp_path, cluster_env):
    port = free_port()
    env = cluster_env
    head = _start_node(["--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                        "--include-dashboard", "false"], tmp_path, "head", env)
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:  # wait for the head's GCS before the worker joins
            if subprocess.run([RAY, "status", "--address", address], capture_output=True, env=env).returncode == 0:
                break
            time.sleep(1)
        nodes.append(_start_node(["--address", address, "--node-ip-address", "127.0.0.1"], tmp_path, "worker", env))
        while time.time() < deadline:
            out = subprocess.run([RAY, "status", "--address", address], capture_output=True, text=True, env=env).stdout
            if out.count("node_") >= 2:
                break
            time.sleep(1)
        else:
            pytest.fail("the second node did not join:\n" + (tmp_path / "worker.log").read_text()[-2000:])
        yield address
    finally:
        for proc in reversed(nodes):
            _stop(proc)


@pytest.mark.slow
def test_sweep_on_a_two_node_cluster(tmp_path, tiny_model, data_root, two_nodes, cluster_env):
    spec = {**tiny_spec(tiny_model, "cluster"), "methods": ["ce", "csd"],
            "resources": {"cpus_per_trial": 1, "placement_strategy": "SPREAD", "max_concurrent_trials": 1}}
    # one trial at a time: csd then finds the CE teacher finished and hands its weights from the
    # trial's node (its 0.01-CPU bundle) to the student task on the other node (SPREAD)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**cluster_env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    out = subprocess.run([sys.executable, "-m", "orchestrator.sweep", str(path), "--data-root", str(data_root),
                          "--output", str(tmp_path / "runs"), "--address", two_nodes],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "cluster check: 2 node(s) see the run folder" in out.stdout

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
