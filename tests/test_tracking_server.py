"""MLflow as docker/compose.yaml runs it, outside Docker (issue 27): `mlflow server --app-name
basic-auth` on a throw-away PostgreSQL with served artifacts (tests/services.py).

Who may write: a client without the credentials, or with wrong ones, is refused; the sweep's,
from the environment, is not, and its password shows in no output and no file of the run. A
server still away when the trials end: the sweep says so and exits 3, and `emocal record` fills
MLflow from the stage store later, once however often it runs. The runs, params, metrics and
artifacts are read back from PostgreSQL and the artifact folder themselves.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.faults import ClaimWatch, trials_s
from tests.services import ADMIN
from tests.test_sweep_e2e import tiny_spec

pytestmark = pytest.mark.slow


def _status(uri: str, user: str | None = None, password: str | None = None) -> int:
    request = urllib.request.Request(f"{uri}/api/2.0/mlflow/experiments/search?max_results=5")
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        return urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_unauthenticated_client_is_refused_and_the_sweeps_is_not(mlflow_server):
    assert _status(mlflow_server.uri) == 401
    assert _status(mlflow_server.uri, ADMIN, "not-the-password") == 401
    assert _status(mlflow_server.uri, ADMIN, mlflow_server.admin_password) == 200
    # the MLflow client without credentials in its environment (it reads them on every request)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    saved = {k: os.environ.pop(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    try:
        with pytest.raises(MlflowException, match="401|Unauthorized|credentials"):
            MlflowClient(mlflow_server.uri).create_experiment("intruder")
    finally:
        os.environ.update(saved)
    assert MlflowClient(mlflow_server.uri).get_experiment_by_name("intruder") is None  # the authenticated client (the sweep's) is not refused


class StopServer(ClaimWatch):
    def __init__(self, stages: Path, server, trial_key: str, generation: int):
        super().__init__(stages, trial_key, generation)
        self.server = server

    def on_claim(self, pid: int, lock: Path) -> None:
        self.server.stop(crash=True)


@pytest.fixture(scope="module")
def ended_while_away(tmp_path_factory, tiny_model, data_root, mlflow_server):
    """A one-stage sweep whose tracking server goes away as its stage starts and is still away
    when the trials end; then the server is started again and `emocal record` runs twice."""
    from tests.test_sweep_e2e import run_sweep

    tmp_path = tmp_path_factory.mktemp("away")
    spec = {**tiny_spec(tiny_model, "away"), "methods": ["ce"]}
    path = tmp_path / "away.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = tmp_path / "runs"
    env_before = dict(os.environ)
    os.environ.update(mlflow_server.client_env())  # run_sweep's subprocess environment
    try:
        with StopServer(runs / "away" / "stages", mlflow_server, "isear-ce-seed0", 1) as stop:
            started = time.perf_counter()
            out = run_sweep(tmp_path, path, data_root, "--runs", str(runs), "--tracking-uri", mlflow_server.uri,
                            "--mlflow-wait", "3")
            swept = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    mlflow_server.start()
    record = [sys.executable, "-m", "orchestrator.record", "away", "--runs", str(runs)]
    env = {**os.environ, **mlflow_server.client_env()}
    started = time.perf_counter()
    first = subprocess.run(record, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    recorded = time.perf_counter() - started
    second = subprocess.run(record, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    print(f"\nfigures: server away at the end: sweep {swept:.1f} s (trials phase {trials_s(runs / 'away'):.1f} s), "
          f"emocal record {recorded:.1f} s")
    return tmp_path, stop, out, first, second


def test_a_server_still_away_at_the_end_is_said_and_emocal_record_fills_it_once(ended_while_away, mlflow_server):
    tmp_path, stop, out, first, second = ended_while_away
    assert stop.seen_at, stop.missed
    assert out.returncode == 3, (out.stdout + out.stderr)[-4000:]
    assert "could not be written" in out.stderr and f"emocal record away --runs {tmp_path / 'runs'}" in out.stderr
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    assert "recorded 1 generation(s) MLflow lacked" in first.stdout
    assert second.returncode == 0 and "recorded 0 generation(s) MLflow lacked" in second.stdout  # idempotent
    assert (tmp_path / "runs" / "away" / "report.md").is_file()
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("away").experiment_id])
    assert run.info.status == "FINISHED"
    for metric in ("test_macro_f1", "test_ece", "ood_ft3_ece"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1]
    files = [a.path for a in client.list_artifacts(run.info.run_id, "gen1")]
    assert "gen1/reliability_test.png" in files and len(files) == len(set(files))


def test_the_sweeps_password_shows_in_no_output_and_no_file(ended_while_away, mlflow_server):
    tmp_path, _, out, first, second = ended_while_away
    secret = mlflow_server.admin_password
    for text in (out.stdout, out.stderr, first.stdout, first.stderr, second.stdout, second.stderr):
        assert secret not in text
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert secret.encode() not in path.read_bytes(), path


def test_the_runs_params_and_artifacts_land_in_postgres_and_the_artifact_store(ended_while_away, mlflow_server,
                                                                             postgres):
    """What the compose file's database holds, read with SQL, not through MLflow's client."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=postgres.port, user=postgres.user, password=postgres.password,
                         dbname=postgres.database) as db:
        (experiment_id,) = db.execute("SELECT experiment_id FROM experiments WHERE name = 'away'").fetchone()
        runs = db.execute("SELECT run_uuid, status, artifact_uri FROM runs WHERE experiment_id = %s",
                          (experiment_id,)).fetchall()
        assert [r[1] for r in runs] == ["FINISHED"]
        run_id, _, artifact_uri = runs[0]
        params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = %s", (run_id,)).fetchall())
        assert params and all(params.values())
        counts = db.execute("SELECT key, count(*) FROM metrics WHERE run_uuid = %s AND step = 1 GROUP BY key",
                            (run_id,)).fetchall()
        assert counts and all(n == 1 for _, n in counts), counts  # every metric of generation 1 once
    assert artifact_uri.startswith("mlflow-artifacts:/")  # served by the server (--serve-artifacts)
    stored = mlflow_server.artifacts / artifact_uri.removeprefix("mlflow-artifacts:/")
    assert (stored / "gen1" / "reliability_test.png").is_file()
