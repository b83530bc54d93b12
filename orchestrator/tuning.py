"""`emocal sweep SPEC` for a spec with `search:`: Tune's searcher and scheduler over one method's options.

Each Tune sample is one chain (the spec's method with the sampled options) on the search seed,
run by the same trial code as a sweep's (orchestrator/trial.py), so its stages are content-keyed
in the run's one stage store: samples that differ only in a student's options find their
teacher and data map stored, and a sample ASHA stopped leaves its finished stages for any later
sample that reaches them (docs/design.md, Searches). The searcher (Optuna's TPE behind Tune's
ConcurrencyLimiter, or Tune's BasicVariantGenerator for random and grid) and the scheduler
(Tune's ASHA, its time unit the generation) are Tune's own.

Tune saves the searcher with the experiment but not the scheduler: a restored ASHA would start
with empty rungs and judge the samples after a restart against none of those before it.
`SchedulerState` saves and restores ASHA's state with the experiment's own checkpoints.

The driver is MLflow's only writer, as in a sweep: a parent run per search, a run per sample
(made when Tune starts the sample, found again by its trial id on --resume), the sampled
options as params, a stopped sample tagged so. Then the confirm step: the chosen configuration
(best objective on validation among the samples that ran to their end) and the CE baseline as
an ordinary sweep spec over every seed of the spec, run on the search's stage store, reported
in the paper's layout (orchestrator/search_report.py writes the search's report).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from orchestrator.plan import TrialPlan, handover_keys, trial_plan
from orchestrator.recorder import RunRecorder
from orchestrator.search import VAL_DERIVED, VAL_METRICS, SearchSpec, apply_sample, objective_value
from orchestrator.spec import SweepSpec, parse_spec
from trainables.methods.registry import MethodConfig, MixupConfig
from trainables.stage import DataConfig, StageSpec

_logger = logging.getLogger(__name__)

OBJECTIVE = "search_objective"  # what the searcher and ASHA read (orchestrator/search.py, objective_value)
SEARCH_TAG, ROLE_TAG, SAMPLE_TAG = "emocal.search", "emocal.search.role", "emocal.search.sample"
OUTCOME_TAG = "emocal.search.outcome"  # completed | stopped | failed
PARENT_TAG = "mlflow.parentRunId"  # the MLflow UI nests a run under the run this tag names
STATE_FILE, STOPS_FILE = "search_state.json", "search_stops.json"


@dataclass(frozen=True)
class SearchContext:
    """What turns a sample's config into its chain: rides `tune.with_parameters`, and the driver
    rebuilds it from the run folder (`load_context`) for the recorder."""

    spec: SweepSpec
    data: DataConfig
    seed: int  # every sample runs on the spec's first seed (orchestrator/search.py)

    @property
    def search(self) -> SearchSpec:
        return self.spec.search

    @property
    def method(self) -> MethodConfig:
        return self.spec.methods[0]

    def sample_method(self, config: Mapping) -> MethodConfig:
        return apply_sample(self.method, {p.path: config[p.path] for p in self.search.params})

    def plan(self, config: Mapping) -> TrialPlan:
        return trial_plan(self.spec, self.spec.datasets[0], self.sample_method(config), self.seed, self.data)

    @property
    def baseline(self) -> StageSpec | None:
        """The CE teacher at the spec's own settings on the search seed: the F1 the constraint reads."""
        if self.search.objective.max_f1_drop is None:
            return None
        ce = MethodConfig(name="ce", description="", teacher=MixupConfig("none"))
        return trial_plan(self.spec, self.spec.datasets[0], ce, self.seed, self.data).stages[0]


def make_context(spec: SweepSpec) -> SearchContext:
    from orchestrator.plan import _data_config

    return SearchContext(spec, _data_config(spec, spec.datasets[0]), spec.seeds[0])


def load_context(run_dir: Path, data_root: str) -> SearchContext:
    """The context from the spec as run (run folder's spec.yaml), as the driver built it."""
    raw = yaml.safe_load((Path(run_dir) / "spec.yaml").read_text())
    return make_context(parse_spec(raw, source_path=str(Path(run_dir) / "spec.yaml"), data_root=data_root,
                                   check_data=False))


def validation_metrics(store, key: str) -> dict:
    """A stage's validation metrics, with the NLL read off its stored validation logits (raw, and
    at its validation-optimal T); the test split's are left out: nothing a search reads sees them."""
    from trainables.calibration import negative_log_likelihood

    metrics = store.load_result(key)["metrics"]
    out = {k: metrics[k] for k in VAL_METRICS if k in metrics}
    arrays = store.load_arrays(key)
    out["val_nll"] = negative_log_likelihood(arrays["val_logits"], arrays["val_labels"])
    out["val_nll_ts"] = negative_log_likelihood(arrays["val_logits"], arrays["val_labels"], metrics["temperature"])
    return out


def run_sample(config: dict, context: SearchContext, settings) -> None:
    """The Tune function trainable of a search: the sample's chain, reporting the objective so far.

    Before the chain, the CE baseline (if the objective has an F1 constraint) is found or
    trained: one stage for the whole search, claimed like any other.
    """
    from orchestrator.trial import _Chain, run_chain_trial

    plan = context.plan(config)
    trial_id = tune.get_context().get_trial_id()
    if settings.keep != "all":  # this sample's parents keep their handover (plan.py, handover_keys)
        settings = dataclasses.replace(settings, keep=frozenset(handover_keys([plan])))
    store = settings.store(trial_id)
    baseline_f1 = None
    if context.baseline is not None:
        chain = _Chain(store, settings.task_cpus, settings.task_gpus, f"{trial_id} baseline", settings.stage_wait_s,
                       settings.keep, settings.data)
        chain.ensure(context.baseline, None)
        baseline_f1 = store.load_result(context.baseline.key())["metrics"]["val_macro_f1"]
    history: list[dict] = []

    def report(stage: StageSpec, result: dict) -> dict:
        history.append(validation_metrics(store, stage.key()))
        return {**history[-1], **objective_value(history, context.search.objective, baseline_f1,
                                                 context.method.report_generation),
                "generations_planned": len(plan.stages)}

    run_chain_trial(plan, store, settings, report=report)


def save_stops(path: Path, stops: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stops, indent=1, sort_keys=True))
    tmp.replace(path)


class GenerationASHA(ASHAScheduler):
    """Tune's ASHAScheduler (time unit: the generation), recording each stop it decides in
    `stops_path` (trial id -> generation), which tells a stopped sample from an interrupted one."""

    def __init__(self, stops_path: str | Path, **kwargs):
        super().__init__(time_attr="generation", **kwargs)
        self.stops_path = str(stops_path)

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and result.get("generation", 0) < result.get("generations_planned", 0):
            path = Path(self.stops_path)
            stops = json.loads(path.read_text()) if path.is_file() else {}
            stops[trial.trial_id] = int(result["generation"])
            save_stops(path, stops)
        return decision


class SchedulerState(tune.Callback):
    """Saves the scheduler's state with every experiment checkpoint and restores it on --resume
    (Tune saves and restores the searcher and the callbacks, not the scheduler). The tuner's
    pickle holds this callback and the scheduler as one object graph, so after a restore
    `self.scheduler` is the scheduler Tune runs."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def get_state(self) -> dict:
        return {"scheduler": copy.deepcopy(self.scheduler.__dict__)}

    def set_state(self, state: dict) -> None:
        self.scheduler.__dict__.update(state["scheduler"])


def search_space(search: SearchSpec) -> dict:
    """The Tune param_space: one domain per searched path (grid: every choice a grid point)."""
    space = {}
    for p in search.params:
        if p.domain == "choice":
            space[p.path] = tune.grid_search(list(p.values)) if search.algorithm == "grid" else tune.choice(list(p.values))
        elif p.domain == "uniform":
            space[p.path] = tune.uniform(*p.values)
        elif p.domain == "loguniform":
            space[p.path] = tune.loguniform(*p.values)
        else:  # randint: both bounds included (orchestrator/search.py)
            space[p.path] = tune.randint(p.values[0], p.values[1] + 1)
    return space


def search_algorithm(search: SearchSpec):
    """Tune's own searchers: Optuna's TPE (seeded) behind a ConcurrencyLimiter, or random/grid."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if search.algorithm == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = optuna.samplers.TPESampler(seed=search.seed)
        return ConcurrencyLimiter(OptunaSearch(metric=OBJECTIVE, mode=search.objective.mode, sampler=sampler),
                                  max_concurrent=search.max_concurrent)
    return BasicVariantGenerator(random_state=search.seed, max_concurrent=search.max_concurrent)


def max_generations(context: SearchContext) -> int:
    return context.search.max_generations or context.method.generations


def make_search_tuner(context: SearchContext, folder, settings, recorder):
    """The search's Tune experiment, restored from the run folder on --resume."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from orchestrator.sweep import TASK_HEAD_CPU

    res, search = context.spec.resources, context.search
    bundle = {"CPU": res.cpus_per_trial - TASK_HEAD_CPU, **({"GPU": res.gpus_per_trial} if res.gpus_per_trial else {})}
    trainable = tune.with_resources(tune.with_parameters(run_sample, context=context, settings=settings),
                                    tune.PlacementGroupFactory([{"CPU": TASK_HEAD_CPU}, bundle],
                                                               strategy=res.placement_strategy))
    trials_dir = folder.tune_dir / "trials"
    if folder.restore:
        return tune.Tuner.restore(str(trials_dir), trainable, resume_unfinished=True, resume_errored=True)
    scheduler = None
    if search.scheduler.kind == "asha":
        scheduler = GenerationASHA(folder.path / STOPS_FILE, metric=OBJECTIVE, mode=search.objective.mode,
                                    max_t=max_generations(context), grace_period=search.scheduler.grace_period,
                                    reduction_factor=search.scheduler.reduction_factor)
    callbacks = [recorder, JsonLoggerCallback(), CSVLoggerCallback()]
    if scheduler is not None:
        callbacks.append(SchedulerState(scheduler))
    return tune.Tuner(
        trainable, param_space=search_space(search),
        tune_config=tune.TuneConfig(search_alg=search_algorithm(search), scheduler=scheduler,
                                    num_samples=search.num_samples, reuse_actors=True,
                                    trial_name_creator=lambda t: t.trial_id, trial_dirname_creator=lambda t: t.trial_id),
        run_config=tune.RunConfig(name="trials", storage_path=str(folder.tune_dir),
                                  failure_config=tune.FailureConfig(max_failures=res.max_failures),
                                  # every checkpoint kept (a few bytes each): a driver killed after Tune
                                  # deleted a sample's older checkpoint but before it saved the experiment
                                  # state left that state naming the deleted one, and the restored sample
                                  # failed to restore (seen in tests/test_search_e2e.py)
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=None), callbacks=callbacks,
                                  verbose=1))


MLFLOW_WAIT_S = 120.0  # how long a finished search waits for its queued MLflow writes


class SearchRecorder(RunRecorder):
    """The driver's MLflow writer of a search (orchestrator/recorder.py's RunRecorder, with a run
    made per sample as Tune starts it, and the NLL logged beside each generation's metrics)."""

    def trial_key(self, trial) -> str:
        return trial.trial_id

    def stage_metrics(self, store, stage: str) -> dict:
        metrics = super().stage_metrics(store, stage)
        return {**metrics, **{k: v for k, v in validation_metrics(store, stage).items() if k in VAL_DERIVED}}

    def on_trial_start(self, iteration, trials, trial, **info):  # the writer runs these in order
        self._queue(trial, "the sample's run", lambda key: register_sample(self, trial))
        super().on_trial_start(iteration, trials, trial, **info)

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._queue(trial, "the sample's run", lambda key: register_sample(self, trial))
        super().on_trial_restore(iteration, trials, trial, **info)


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def register_sample(recorder, trial) -> None:
    """Find or make the sample's MLflow run (a child of the search's run) and add the sample to
    the recorder's state file: its stages, planned from its config as the trainable plans them."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from orchestrator.tracking import CURRENT, PLAN_TAG, STATUS_TAG, TRIAL_TAG, package_version

    state = recorder._load()
    if trial.trial_id in state["trials"]:
        return
    context = load_context(Path(state["run_dir"]), state["data_root"])
    config = {p.path: trial.config[p.path] for p in context.search.params}
    plan = context.plan(config)
    fingerprint = _fingerprint(plan.fingerprint, trial.trial_id, package_version())
    client = MlflowClient(state["uri"])
    found = client.search_runs([state["experiment_id"]], filter_string=(
        f"tags.`{SAMPLE_TAG}` = '{trial.trial_id}' and tags.`{PARENT_TAG}` = '{state['parent_run_id']}'"))
    index = len(state["trials"]) + 1
    if found:
        run_id = found[0].info.run_id
    else:
        sampled = context.sample_method(config)
        run = client.create_run(state["experiment_id"], run_name=f"{plan.dataset}-{context.method.name}-s{index}", tags={
            TRIAL_TAG: trial.trial_id, PLAN_TAG: fingerprint, STATUS_TAG: CURRENT, SEARCH_TAG: context.spec.name,
            ROLE_TAG: "sample", SAMPLE_TAG: trial.trial_id, PARENT_TAG: state["parent_run_id"],
            "seed": str(plan.seed), "dataset": plan.dataset, "method": context.method.name,
            "generations": str(len(plan.stages))})
        run_id = run.info.run_id
        params = {**{p: str(v) for p, v in config.items()}, "generations": len(plan.stages),
                  "seed": plan.seed, "lr": plan.stages[0].train.lr, "epochs": plan.stages[0].train.epochs,
                  "teacher": sampled.teacher.kind, "distill": sampled.distill.kind}
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    state["trials"][trial.trial_id] = {"run_id": run_id, "fingerprint": fingerprint, "index": index, "config": config,
                                       "stages": [(s.generation, s.key()) for s in plan.stages],
                                       "all_stages": [s.key() for s in plan.all_stages], "store": state["store"]}
    tmp = Path(recorder.state_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(recorder.state_path)


def open_search_tracking(context: SearchContext, folder, options, data_root: str):
    """The search's experiment and parent run (found again on --resume; a fresh start supersedes the
    runs of an earlier search of the same name), and the recorder's state file."""
    from mlflow import MlflowClient
    from mlflow.entities import Param, RunTag

    from orchestrator import locations
    from orchestrator.sweep import Tracking
    from orchestrator.tracking import (CURRENT, STATUS_TAG, SUPERSEDED, SUPERSEDED_REASON_TAG, ensure_experiment,
                                       package_version, source_revision)

    spec = context.spec
    uri = options.tracking_uri or locations.resolve_tracking_uri(None, folder.path)
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    experiment_id = ensure_experiment(uri, spec.name, artifact_root=Path.cwd() / "mlartifacts" if local else None)
    client = MlflowClient(uri)
    state_path = folder.path / STATE_FILE
    state = json.loads(state_path.read_text()) if folder.restore and state_path.is_file() else None
    current = client.search_runs([experiment_id], filter_string=f"tags.`{STATUS_TAG}` = '{CURRENT}'", max_results=50000)
    if state is None:  # a fresh search: what an earlier one of this name left is kept, never continued
        for run in current:
            client.log_batch(run.info.run_id, tags=[RunTag(STATUS_TAG, SUPERSEDED),
                                                    RunTag(SUPERSEDED_REASON_TAG, "a new search of this name began")])
        parent = client.create_run(experiment_id, run_name=f"{spec.name} (search)", tags={
            SEARCH_TAG: spec.name, ROLE_TAG: "parent", STATUS_TAG: CURRENT, "emocal.version": package_version(),
            "emocal.git_commit": source_revision(), "method": context.method.name})
        s = context.search
        client.log_batch(parent.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in {
            "algorithm": s.algorithm, "scheduler": s.scheduler.kind, "num_samples": s.num_samples,
            "max_concurrent": s.max_concurrent, "metric": s.objective.metric, "mode": s.objective.mode,
            "max_f1_drop": s.objective.max_f1_drop, "seed": context.seed, "space": json.dumps(
                {p.path: {p.domain: list(p.values)} for p in s.params})}.items()])
        state = {"uri": uri, "experiment_id": experiment_id, "parent_run_id": parent.info.run_id, "trials": {}}
    state.update({"run_dir": str(folder.path), "data_root": data_root, "store": str(folder.store_root)})
    folder.path.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=1))
    client.update_run(state["parent_run_id"], status="RUNNING")
    return Tracking(uri, experiment_id, {k: t["run_id"] for k, t in state["trials"].items()}, state_path)


@dataclass(frozen=True)
class Sample:
    """One sample as the search left it: its options, the generations it finished and how it ended."""

    trial_id: str
    index: int
    config: dict
    stages: tuple[str, ...]  # its generations' keys, planned
    all_stages: tuple[str, ...]  # with its data map
    finished: tuple[dict, ...]  # validation metrics of each finished generation, in order
    outcome: str  # completed | stopped | failed | unfinished
    objective: dict  # orchestrator/search.py, objective_value (empty before its first generation)

    @property
    def name(self) -> str:
        return f"s{self.index}"


def read_samples(run_dir: Path) -> tuple[dict, list[Sample], float | None]:
    """The search's state, its samples from the stage store, and the CE baseline's validation F1."""
    from trainables.store import StageStore

    state = json.loads((run_dir / STATE_FILE).read_text())
    stops = json.loads((run_dir / STOPS_FILE).read_text()) if (run_dir / STOPS_FILE).is_file() else {}
    context = load_context(run_dir, state["data_root"])
    store = StageStore(state["store"])
    baseline = context.baseline
    baseline_f1 = store.load_result(baseline.key())["metrics"]["val_macro_f1"] if baseline and store.has(
        baseline.key()) else None
    samples = []
    for trial_id, t in sorted(state["trials"].items(), key=lambda kv: kv[1]["index"]):
        keys = [k for _, k in t["stages"]]
        finished = []
        for k in keys:
            if not store.has(k):
                break
            finished.append(validation_metrics(store, k))
        if len(finished) == len(keys):
            outcome = "completed"
        elif trial_id in stops and len(finished) >= stops[trial_id]:
            outcome = "stopped"
        elif trial_id in state.get("failed", ()):
            outcome = "failed"
        else:
            outcome = "unfinished"
        objective = objective_value(finished, context.search.objective, baseline_f1,
                                    context.method.report_generation) if finished else {}
        samples.append(Sample(trial_id, t["index"], t["config"], tuple(keys), tuple(t["all_stages"]),
                              tuple(finished), outcome, objective))
    return state, samples, baseline_f1


def best_sample(samples: list[Sample], mode: str) -> Sample | None:
    """The chosen configuration: the best objective (on validation) among the samples that ran to
    their end (a stopped one was judged worse at a rung by ASHA); ties to the earliest sample."""
    done = [s for s in samples if s.outcome == "completed"]
    if not done:
        return None
    sign = 1 if mode == "min" else -1
    return min(done, key=lambda s: (sign * s.objective["search_objective"], s.index))


def mark_outcomes(state: dict, samples: list[Sample]) -> None:
    """Each sample's run tagged completed or stopped and FINISHED once its generations are logged;
    the parent run FINISHED when every sample is."""
    from mlflow import MlflowClient

    client = MlflowClient(state["uri"])
    for s in samples:
        run_id = state["trials"][s.trial_id]["run_id"]
        if s.outcome == "failed":
            client.set_tag(run_id, OUTCOME_TAG, "failed")
        if s.outcome in ("completed", "stopped"):
            client.set_tag(run_id, OUTCOME_TAG, s.outcome if s.outcome == "completed" else
                           f"stopped by ASHA after generation {len(s.finished)}")
            if s.outcome == "stopped":
                client.set_tag(run_id, "emocal.search.stopped", "true")
            if client.get_run(run_id).info.status != "FINISHED":
                client.set_terminated(run_id, status="FINISHED")


def drop_orphans(state_path: Path, tune_trials: set[str]) -> None:
    """Samples the driver registered after Tune's last saved state (it was killed in between) are not
    in the restored experiment, whose searcher suggests again from its saved state: their runs are
    tagged superseded and KILLED, and they leave the search's state. Their finished stages stay in
    the store, and the searcher's new suggestion finds them there when it asks for the same."""
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    from orchestrator.tracking import STATUS_TAG, SUPERSEDED, SUPERSEDED_REASON_TAG

    state = json.loads(Path(state_path).read_text())
    orphans = sorted(set(state["trials"]) - tune_trials)
    client = MlflowClient(state["uri"])
    for trial_id in orphans:
        run_id = state["trials"].pop(trial_id)["run_id"]
        client.log_batch(run_id, tags=[RunTag(STATUS_TAG, SUPERSEDED), RunTag(SUPERSEDED_REASON_TAG,
                         "suggested after Tune's last saved state; the restored searcher suggested again")])
        client.set_terminated(run_id, status="KILLED")
        _logger.warning("sample %s began after Tune's last saved state and is not in the restored search; its run "
                        "%s is superseded (its finished stages stay in the store)", trial_id, run_id)
    if orphans:
        state.setdefault("dropped", []).extend(orphans)
        Path(state_path).write_text(json.dumps(state, indent=1))


def confirm_raw(spec: SweepSpec, sample: Sample) -> dict:
    """The confirm step as an ordinary sweep spec: the CE baseline and the chosen configuration (a
    method mapping over the searched one) on every seed of the spec, named <search>_confirm."""
    raw = copy.deepcopy(spec.raw)
    raw.pop("search")
    entry = raw["methods"][0]
    entry = {"name": entry, "base": entry} if isinstance(entry, str) else dict(entry)
    entry = copy.deepcopy(entry)
    for path, value in sample.config.items():
        if path == "generations":
            entry.setdefault("distill", {})["generations"] = value
        else:
            group, option = path.split(".", 1)
            entry.setdefault(group, {})[option] = value
    chosen = f"{entry['name']}_best"
    entry.update(name=chosen, description=f"{spec.methods[0].name} as the search {spec.name} chose it: "
                 + ", ".join(f"{k} {v}" for k, v in sample.config.items()))
    raw["methods"] = ["ce", entry] if spec.methods[0].name != "ce" else [entry]
    raw["name"] = f"{spec.name}_confirm"
    return json.loads(json.dumps(raw))  # plain YAML types (numpy numbers from a sampler become floats)


def search_settings(context: SearchContext, folder, options):
    """What every sample shares (orchestrator/trial.py, TrialSettings); starts preparing the data.
    Which stages keep a handover is each sample's own (run_sample): the samples are not known yet."""
    from orchestrator.sweep import TASK_HEAD_CPU
    from orchestrator.trial import TrialSettings, prepare_data_refs

    res = context.spec.resources
    first = context.plan({p.path: p.values[0] for p in context.search.params})  # every sample's data is its data
    return TrialSettings(store_root=str(folder.store_root), reuse=options.reuse,
                         task_cpus=res.cpus_per_trial - TASK_HEAD_CPU, task_gpus=res.gpus_per_trial,
                         stage_wait_s=res.stage_wait_hours * 3600,
                         keep="all" if options.keep_all_weights else frozenset(), data=prepare_data_refs([first]))


def finish_search(context: SearchContext, folder, tracking, results) -> tuple[dict, list[Sample], int]:
    """After Tune: orphans dropped, every finished generation logged, outcomes tagged. Returns the
    state, the samples and how many are still to run (0 when the search is done)."""
    from orchestrator.tracking import mark_unfinished

    drop_orphans(tracking.recorder_state, {Path(r.path).name for r in results})
    # a failed sample (a diverged stage: docs/design.md, Failure behaviour) ends the search's wait for it
    state = json.loads(Path(tracking.recorder_state).read_text())
    state["failed"] = sorted(Path(r.path).name for r in results if r.error is not None)
    Path(tracking.recorder_state).write_text(json.dumps(state, indent=1))
    recorder = SearchRecorder(tracking.recorder_state)
    if not recorder.flush(MLFLOW_WAIT_S):  # the writer thread's queue first (orchestrator/recorder.py)
        _logger.warning("MLflow: the search's queued writes did not finish in %.0f s (%s); catching up now",
                        MLFLOW_WAIT_S, recorder.pending_error())
    recorder.catch_up_all()
    state, samples, _ = read_samples(folder.path)
    mark_outcomes(state, samples)
    unfinished = [s for s in samples if s.outcome == "unfinished"]
    mark_unfinished(state["uri"], [state["trials"][s.trial_id]["run_id"] for s in unfinished])
    return state, samples, len(unfinished) + max(0, _planned_samples(context.search) - len(samples))


def confirm_folder(spec: SweepSpec, sample: Sample, folder, options):
    """The confirm step's spec (parsed like any spec) and its run folder, on the search's stage store."""
    from orchestrator import locations
    from orchestrator.plan import build_plan
    from orchestrator.sweep import RunFolder, check_resume_spec

    # its resume command is the search's: --resume finds the search done and confirms again
    confirm = parse_spec(confirm_raw(spec, sample), source_path=spec.source_path, data_root=spec.data_root)
    cfolder = RunFolder(tuple(build_plan(confirm)), locations.run_folder(options.runs, confirm.name), False,
                        stages=folder.store_root)
    check_resume_spec(cfolder.path, confirm, False)
    return confirm, cfolder


def all_stored(folder) -> bool:
    """Whether the store holds every stage of the folder's trials (then Tune has nothing to run)."""
    from trainables.store import StageStore

    store = StageStore(folder.store_root)
    return all(store.has(s.key()) for t in folder.trials for s in t.all_stages)


def run_search(spec: SweepSpec, args: argparse.Namespace) -> int:
    """A search to its report; returns the exit code (130: interrupted, with the --resume command).
    The steps: the run folder, Ray, the setup check, the search's MLflow runs, the search through
    Tune, its outcomes, the confirm sweep on the search's stage store, the reports."""
    import ray
    from mlflow import MlflowClient

    from orchestrator.search_report import write_search_report
    from orchestrator.sweep import (SweepOptions, exit_code, finish_tracking, fit, make_tuner, open_run_folder,
                                    open_tracking, setup_ready, start_ray, tracking_behind, trial_settings,
                                    write_report)

    os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")  # as run_sweep: the recorder's MLflow calls take ~1 s
    options = SweepOptions.from_args(args)
    folder = open_run_folder(spec, options)
    context = make_context(spec)
    ray_context = start_ray(options)
    try:
        if not setup_ready(spec, folder, options, ray_context):
            return 2
        tracking = open_search_tracking(context, folder, options, str(args.data_root))
        results = fit(make_search_tuner(context, folder, search_settings(context, folder, options),
                                        SearchRecorder(tracking.recorder_state)))
        state, samples, left = finish_search(context, folder, tracking, results)
        if left:
            print(f"\nInterrupted: {left} of {_planned_samples(context.search)} sample(s) unfinished (their MLflow "
                  f"runs are marked KILLED). Continue with: python -m orchestrator.sweep {spec.source_path} --resume",
                  file=sys.stderr)
            return 130
        best = best_sample(samples, context.search.objective.mode)
        if best is None:
            print("error: no sample of the search finished its chain; see the trials' errors above", file=sys.stderr)
            return 1
        confirm, cfolder = confirm_folder(spec, best, folder, options)
        ctracking = open_tracking(confirm, cfolder, options)
        cresults = []  # every stage stored (one seed: the search's own): the recorder logs them, no Tune needed
        if not all_stored(cfolder):
            cresults = fit(make_tuner(confirm, cfolder, trial_settings(confirm, cfolder, options), ctracking))
    finally:
        ray.shutdown()
    unfinished, problem = finish_tracking(ctracking, options.mlflow_wait_s)
    if problem is not None:  # MLflow away: said, with the command that fills it in later (as a sweep)
        tracking_behind(confirm, options, ctracking, problem)
        return exit_code(confirm, cfolder, cresults, unfinished, tracked=False)
    code = exit_code(confirm, cfolder, cresults, unfinished)
    write_report(confirm, cfolder, ctracking)
    write_search_report(folder.path, cfolder.path, confirm.name, tracking.uri)
    if code == 0:
        MlflowClient(tracking.uri).set_terminated(state["parent_run_id"], status="FINISHED")
    return code


def _planned_samples(search: SearchSpec) -> int:
    if search.algorithm != "grid":
        return search.num_samples
    points = 1
    for p in search.params:
        points *= len(p.values)
    return points * search.num_samples
