"""The guard that keeps `pytest -m "not slow"` fast (tests/slow_guard.py): what it calls heavy,
and that it fails an unmarked test before Ray or a server starts."""
from __future__ import annotations

import subprocess
import sys

import pytest
import ray

from tests.slow_guard import heavy_command

PY = sys.executable


@pytest.mark.parametrize("argv, env, heavy", [
    (["/venv/bin/ray", "start", "--head"], {}, "starts `ray`"),
    (["/venv/lib/ray/core/src/ray/gcs/gcs_server", "--gcs_server_port=0"], {}, "starts `gcs_server`"),
    ([PY, "-m", "mlflow", "server", "--port", "5000"], {}, "starts an MLflow server"),
    (["mlflow", "ui"], {}, "starts an MLflow server"),
    (["chromium", "--headless", "--dump-dom", "http://127.0.0.1"], {}, "starts `chromium`"),
    ("postgres -D /var/lib/pg", {}, "starts `postgres`"),
    (["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/initdb", "-D", "/x"], {}, "starts `initdb`"),
    (["/bin/sh", "-c", "ray start --head --block"], {}, "starts `ray`"),  # subprocess.run(..., shell=True)
    ([PY, "-m", "orchestrator.sweep", "s.yaml", "--data-root", "/d"], {}, "runs a sweep (it starts Ray and trains)"),
    ([PY, "-m", "orchestrator.sweep", "s.yaml"], {"EMOCAL_DATA": "/d"}, "runs a sweep (it starts Ray and trains)"),
    (["emocal", "sweep", "s.yaml", "--data-root=/d"], {}, "runs a sweep (it starts Ray and trains)"),
    ([PY, "-m", "orchestrator.sweep", "s.yaml", "--dry-run", "--data-root", "/d"], {}, None),
    (["emocal", "sweep", "--help"], {"EMOCAL_DATA": "/d"}, None),
    ([PY, "-m", "orchestrator.sweep", "s.yaml"], {}, None),  # no data root: it stops with an error
    ([PY, "-m", "orchestrator.report", "e2e", "--runs", "runs"], {"EMOCAL_DATA": "/d"}, None),
    ([PY, "-c", "from mlflow import MlflowClient; print('server')"], {}, None),
    (["git", "status"], {}, None),
])
def test_what_counts_as_heavy(argv, env, heavy):
    assert heavy_command(argv, env) == heavy


def test_an_unmarked_test_cannot_start_ray_or_a_server():
    with pytest.raises(pytest.fail.Exception, match="calls ray.init but is not marked slow"):
        ray.init(address="local", num_cpus=1, include_dashboard=False)
    assert not ray.is_initialized()
    for argv in ([PY, "-m", "mlflow", "server", "--port", "1"], ["ray", "start", "--head"]):
        with pytest.raises(pytest.fail.Exception, match=r"test_an_unmarked_test_cannot_start_ray_or_a_server .* not "
                                                        r"marked slow: add @pytest.mark.slow"):
            subprocess.run(argv, capture_output=True)
    assert subprocess.run([PY, "-c", "print(1)"], capture_output=True, text=True).stdout == "1\n"  # light: runs


@pytest.mark.slow
def test_a_slow_test_is_not_guarded():
    from tests import slow_guard

    assert ray.init is ray._private.worker.init and slow_guard._current is None
