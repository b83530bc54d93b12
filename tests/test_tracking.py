"""tracking_uri(): a relative MLFLOW_TRACKING_URI is made absolute on the driver, so trials that
Tune runs in working folders of their own open the driver's store, not a new empty one."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from orchestrator.tracking import tracking_uri

FORMS = [
    # (MLFLOW_TRACKING_URI, the URI every trial gets, with {cwd} the driver's working directory)
    ("sqlite:///mlflow.db", "sqlite:///{cwd}/mlflow.db"),
    ("sqlite:///./sub/mlflow.db?timeout=30", "sqlite:///{cwd}/sub/mlflow.db?timeout=30"),
    ("./mlruns", "{cwd}/mlruns"),
    ("mlruns", "{cwd}/mlruns"),
    ("../shared/mlruns", "{parent}/shared/mlruns"),
    ("file:./mlruns", "file://{cwd}/mlruns"),
    ("file:mlruns", "file://{cwd}/mlruns"),
    (None, "sqlite:///{cwd}/mlflow.db"),  # unset: the default store beside the driver
    # already absolute, or not a local store: as given
    ("sqlite:////srv/mlflow/mlflow.db", "sqlite:////srv/mlflow/mlflow.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("file:///srv/mlruns", "file:///srv/mlruns"),
    ("/srv/mlruns", "/srv/mlruns"),
    ("http://mlflow:5000", "http://mlflow:5000"),
    ("postgresql://mlflow@db:5432/mlflow", "postgresql://mlflow@db:5432/mlflow"),
    ("databricks", "databricks"),
]


@pytest.mark.parametrize("given, expected", FORMS, ids=[str(f[0]) for f in FORMS])
def test_each_form_is_resolved_against_the_driver_folder(tmp_path, monkeypatch, given, expected):
    cwd = tmp_path.resolve() / "driver"
    cwd.mkdir()
    if given is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", given)
    monkeypatch.chdir(cwd)
    assert tracking_uri() == expected.format(cwd=cwd, parent=cwd.parent)
    monkeypatch.chdir(tmp_path)  # a trial's working folder: the driver's answer does not depend on it
    assert tracking_uri(cwd=cwd) == expected.format(cwd=cwd, parent=cwd.parent)


def test_a_trial_in_another_folder_opens_the_drivers_store(tmp_path, monkeypatch):
    driver, trial = tmp_path / "driver", tmp_path / "trial"
    driver.mkdir()
    trial.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    monkeypatch.chdir(driver)
    uri = tracking_uri()
    experiment = MlflowClient(uri).create_experiment("resolved")
    # a trial: another process (MLflow caches stores per URI within one), in a folder of its own
    found = subprocess.run([sys.executable, "-c", "import sys; from mlflow import MlflowClient; "
                            "e = MlflowClient(sys.argv[1]).get_experiment_by_name('resolved'); print(e and e.experiment_id)",
                            uri], cwd=trial, capture_output=True, text=True, check=True)
    assert found.stdout.split()[-1] == experiment
    assert os.listdir(trial) == []  # no second, empty store
