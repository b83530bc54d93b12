"""The MLflow side: one experiment per spec, exactly one current run per trial and plan.

Tune's MLflow helpers open a new run on every retry and restore (ray #48664, #20473;
`MLflowLoggerCallback._trial_runs` reset on restore). So the driver makes or finds each
trial's run before Tune starts (`sync_runs`), by the tag `emocal.trial` (seed, dataset,
method) and the plan's fingerprint, and the driver logs to it (orchestrator/recorder.py): the
same run survives a worker restart, a driver kill and `--resume`, while a changed plan (a
setting, the code's stage format, the package version) gets a new run and the old one is
tagged superseded, so no number of an older plan is ever continued or reported. A
generation already logged is never logged twice (its step is looked up first).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from orchestrator.locations import absolute_uri, resolve_tracking_uri  # noqa: F401 - absolute_uri: its old home

_logger = logging.getLogger(__name__)

TRIAL_TAG = "emocal.trial"
PLAN_TAG = "emocal.plan_fingerprint"  # TrialPlan.fingerprint: stage keys, reporting settings, version
STATUS_TAG, CURRENT, SUPERSEDED = "emocal.status", "current", "superseded"
SUPERSEDED_BY_TAG, SUPERSEDED_REASON_TAG = "emocal.superseded_by", "emocal.superseded_reason"
VERSION_TAG, REVISION_TAG = "emocal.version", "emocal.git_commit"
# MLflow 3's UI opens an experiment on its GenAI overview unless it is a model-training one
# (the UI reads this tag; "custom_model_development" shows the runs table first).
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
KIND_TAG = "emocal.kind"  # "llm" for an LLM baseline's run; absent for a chain's
PROBE_METRIC = "test_macro_f1"  # logged for every generation; its steps say which are done


# The MLflow client retries a failed HTTP request 7 times with growing pauses (about 4 minutes):
# the driver's writer retries by itself, off Tune's loop (orchestrator/recorder.py), so each
# request gives up after one quick retry and a server that went away is noticed in seconds.
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


def bound_http_retries() -> None:
    """HTTP_RETRIES for this process, unless the user set their own."""
    for name, value in HTTP_RETRIES.items():
        os.environ.setdefault(name, value)


def tracking_uri(cwd: str | Path | None = None) -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite store `mlflow.db` in the working directory,
    with a local store's path made absolute against `cwd` (default: the working directory).

    The driver resolves it once and hands it to every trial: Tune runs each trial in a working
    folder of its own, where `sqlite:///mlflow.db` or `./mlruns` would open a new, empty store.
    The commands resolve `--tracking-uri` and the run folder's recorded store too
    (`orchestrator.locations.resolve_tracking_uri`).
    """
    return resolve_tracking_uri(cwd=cwd)


def ensure_experiment(uri: str, name: str, artifact_root: str | Path | None = None) -> str:
    """The experiment's id, created on first use (artifacts under `artifact_root` for a local
    store) and marked as a model-training experiment, so the MLflow UI opens on its runs."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        if exp.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        return exp.experiment_id
    location = Path(artifact_root).resolve().as_uri() if artifact_root else None
    return client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})


def describe_experiment(uri: str, experiment_id: str, report_markdown: str) -> None:
    """The report as the experiment's description, which the MLflow UI shows above its runs:
    the paper-layout tables are there without building a chart or a table by hand."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    MlflowClient(uri).set_experiment_tag(experiment_id, "mlflow.note.content",
                                         f"{report_markdown}\n\n(written by the sweep at {stamp}; "
                                         "`python -m orchestrator.report` prints it again)")


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("emocal")
    except Exception:  # pragma: no cover - running from a tree that was never installed
        return "unknown"


def source_revision(root: str | Path | None = None) -> str:
    """The git commit the code came from, with "+dirty" for uncommitted changes; "" outside git."""
    import subprocess

    cwd = Path(root or Path(__file__).resolve().parents[1])
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                               text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return ""
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@dataclass(frozen=True)
class PlannedRun:
    """What the driver knows of a trial's run before it starts: its identity and fingerprint."""

    trial_key: str
    fingerprint: str
    tags: dict[str, str]
    params: dict[str, str]


def sync_runs(uri: str, experiment_id: str, planned: list[PlannedRun]) -> dict[str, str]:
    """The MLflow run of every planned trial; stale runs are tagged superseded, never reused.

    A trial continues its run only when the run's fingerprint (its stage keys, its reporting
    settings and the package version: `TrialPlan.fingerprint`) equals the plan's. Every other
    run of the experiment, of a changed plan or of a trial the spec no longer has, gets
    `emocal.status = superseded` (with `emocal.superseded_by`), keeps its numbers for the
    record, and is left out of the report. Runs are created here, on the driver, so trials
    never race to create one.

    Returns:
        trial key -> run id.
    """
    client = MlflowClient(uri)
    wanted = {p.trial_key: p for p in planned}
    existing = client.search_runs([experiment_id], filter_string=f"tags.`{STATUS_TAG}` = '{CURRENT}'",
                                  order_by=["attributes.start_time ASC"], max_results=50000)
    runs: dict[str, str] = {}
    stale = []
    for run in existing:
        key, tags = run.data.tags.get(TRIAL_TAG), run.data.tags
        p = wanted.get(key)
        if p is not None and tags.get(PLAN_TAG) == p.fingerprint and key not in runs:
            runs[key] = run.info.run_id
        else:
            stale.append(run)
    revision = source_revision()
    for p in planned:
        if p.trial_key in runs:
            continue
        run = client.create_run(experiment_id, run_name=p.trial_key,
                                tags={TRIAL_TAG: p.trial_key, PLAN_TAG: p.fingerprint, STATUS_TAG: CURRENT,
                                      VERSION_TAG: package_version(), REVISION_TAG: revision, **p.tags})
        client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in p.params.items()])
        client.update_run(run.info.run_id, status="SCHEDULED")
        runs[p.trial_key] = run.info.run_id
    for run in stale:
        key = run.data.tags.get(TRIAL_TAG)
        reason = "plan changed" if key in wanted else "trial no longer in the spec"
        client.log_batch(run.info.run_id, tags=[RunTag(STATUS_TAG, SUPERSEDED), RunTag(SUPERSEDED_REASON_TAG, reason),
                                                RunTag(SUPERSEDED_BY_TAG, runs.get(key, ""))])
        _logger.warning("MLflow run %s (%s) superseded: %s", run.info.run_id, key, reason)
    return runs


def mark_unfinished(uri: str, run_ids) -> int:
    """Runs still RUNNING or SCHEDULED after the sweep stopped are marked KILLED; how many."""
    client = MlflowClient(uri)
    killed = 0
    for run_id in run_ids:
        if client.get_run(run_id).info.status in ("RUNNING", "SCHEDULED"):
            client.set_terminated(run_id, status="KILLED")
            killed += 1
    return killed


class TrialRun:
    """The one MLflow run of one trial, made by `sync_runs` on the driver and attached here."""

    def __init__(self, uri: str, run_id: str, fingerprint: str):
        self.client = MlflowClient(uri)
        self.run_id = run_id
        found = self.client.get_run(run_id).data.tags.get(PLAN_TAG)
        if found != fingerprint:  # the driver decided this run; a mismatch is a bug, not a choice
            raise RuntimeError(f"MLflow run {run_id} has plan fingerprint {found}, the trial {fingerprint}")

    def start(self) -> None:
        self.client.update_run(self.run_id, status="RUNNING")

    def logged_generations(self) -> set[int]:
        return {m.step for m in self.client.get_metric_history(self.run_id, PROBE_METRIC)}

    def log_generation(self, generation: int, metrics: dict[str, float], artifacts: Path | None = None,
                       timestamp_ms: int | None = None) -> None:
        """Metrics with the generation as step, then the generation's plots and data under gen<g>/.

        Artifacts go first and the probe metric last, so a generation counts as logged only
        when everything of it is in. A write cut off by a server that went away is written
        again whole; with the stage's own `timestamp_ms` (when it was stored) every metric it
        repeats is the same (key, value, step, timestamp), which MLflow stores once, and
        artifacts land on the same paths.
        """
        if artifacts is not None and artifacts.is_dir():
            self.client.log_artifacts(self.run_id, str(artifacts), f"gen{generation}")
        now = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        batch = [Metric(k, float(v), now, generation) for k, v in sorted(metrics.items()) if k != PROBE_METRIC]
        for start in range(0, len(batch), 900):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(self.run_id, metrics=batch[start : start + 900])
        self.client.log_batch(self.run_id, metrics=[Metric(PROBE_METRIC, float(metrics[PROBE_METRIC]), now, generation)],
                              tags=[RunTag("emocal.generations_logged", str(generation))])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
