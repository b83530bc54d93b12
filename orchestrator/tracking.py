"""The MLflow side: one experiment per spec, exactly one run per trial, however often it restarts.

Tune's MLflow helpers open a new run on every retry and restore (PRIOR_WORK.md 3: ray #48664,
`MLflowLoggerCallback._trial_runs` reset on restore). So the trial logs by itself through an
`MlflowClient`, and finds its run again by the tag `emocal.trial` (seed, dataset, method),
which survives a worker restart, a driver kill and `--resume` alike. A generation already
logged is never logged twice (its step is looked up first).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

_logger = logging.getLogger(__name__)

TRIAL_TAG = "emocal.trial"
PROBE_METRIC = "test_macro_f1"  # logged for every generation; its steps say which are done


def tracking_uri(cwd: str | Path | None = None) -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite store `mlflow.db` in the working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path(cwd or os.getcwd()).resolve() / 'mlflow.db'}"


def ensure_experiment(uri: str, name: str, artifact_root: str | Path | None = None) -> str:
    """The experiment's id, created on first use (artifacts under `artifact_root` for a local store)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    location = Path(artifact_root).resolve().as_uri() if artifact_root else None
    return client.create_experiment(name, artifact_location=location)


class TrialRun:
    """The one MLflow run of one trial, created on first use and re-attached afterwards."""

    def __init__(self, uri: str, experiment_id: str, trial_key: str, tags: dict[str, str], params: dict[str, str]):
        self.client = MlflowClient(uri)
        found = self.client.search_runs([experiment_id], filter_string=f"tags.`{TRIAL_TAG}` = '{trial_key}'",
                                        order_by=["attributes.start_time ASC"])
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            _logger.info("re-attached MLflow run %s of trial %s", self.run_id, trial_key)
        else:
            run = self.client.create_run(experiment_id, run_name=trial_key, tags={TRIAL_TAG: trial_key, **tags})
            self.run_id = run.info.run_id
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])

    def logged_generations(self) -> set[int]:
        return {m.step for m in self.client.get_metric_history(self.run_id, PROBE_METRIC)}

    def log_generation(self, generation: int, metrics: dict[str, float], artifacts: Path | None = None) -> None:
        """Metrics with the generation as step, then the generation's plots and data under gen<g>/.

        Artifacts go first and the probe metric last, so a generation counts as logged only
        when everything of it is in.
        """
        if artifacts is not None and artifacts.is_dir():
            self.client.log_artifacts(self.run_id, str(artifacts), f"gen{generation}")
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, generation) for k, v in sorted(metrics.items()) if k != PROBE_METRIC]
        for start in range(0, len(batch), 900):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(self.run_id, metrics=batch[start : start + 900])
        self.client.log_batch(self.run_id, metrics=[Metric(PROBE_METRIC, float(metrics[PROBE_METRIC]), now, generation)],
                              tags=[RunTag("emocal.generations_logged", str(generation))])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
