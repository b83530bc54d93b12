"""One Ray Tune trial: a (seed, dataset, method) chain, each generation a Ray task.

The trainable only drives: for each stage it either finds it finished in the stage store
(trained by another trial, or before a restart) or claims it and runs it as a Ray task that
lands in the trial's placement group. A generation task returns (handover, result); the
handover's ObjectRef (weights and training-set logits) goes straight into the next generation's
task, so weights travel through the object store as CPU numpy arrays, never a temp file or the
driver (docs/design.md, Handovers). Only stages that some generation of the sweep reads make a handover
(`TrialSettings.keep`, from orchestrator/plan.py's `handover_keys`, or "all" with --keep-all-weights).
After each generation the trial gives Tune a report and a checkpoint, so a restarted trial
resumes at its last finished generation. Trials never touch MLflow: each report names its
stage, and the driver logs it (orchestrator/recorder.py).

What crosses the Ray boundary is typed and frozen: the trial's plan (orchestrator/plan.py), the
sweep's `TrialSettings`, a stage's spec, and a task's `StageRun` (its stored result and where it ran).
An LLM row's trial (one stage, no chain) claims its stage the same way (`claim_stage`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import ray
from ray import tune

from orchestrator.kinds import kind_of
from orchestrator.placement import StageTask, task_device
from orchestrator.plan import LLMTrialPlan, TrialPlan
from orchestrator.progress import ProgressPlan, progress_metrics
from trainables.stage import LATE_HANDOVERS, DataConfig, StageSpec, late_handovers, load_handover
from trainables.store import StageStore
from trainables.train import DivergedError

_logger = logging.getLogger(__name__)

# what MixUp teachers and OOD fine-tuning read of the data-map stage
DATA_MAP_ARRAYS = ("gold_probs", "correct", "last_logits")
# Tune's progress table shows the first few metrics of a report: generation, trained or shared,
# then these in this order
REPORTED = ("val_macro_f1", "test_ece", "test_macro_f1", "test_weighted_f1", "test_ece_ts", "temperature", "ood_ece")
LLM_REPORTED = ("test_macro_f1", "test_ece", "test_unusable", "ood_macro_f1", "ood_ece", "ood_unusable")


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a sweep shares, fixed when the sweep starts; rides `tune.with_parameters`.

    Attributes:
        store_root: the sweep's stage store.
        reuse: trials share stages (False with --no-reuse: each trial has a store of its own).
        task_cpus: CPUs of a stage task (the trial's share less what its head holds).
        task_gpus: GPUs of a chain's stage task.
        llm_task_gpus: GPUs of an LLM stage task.
        stage_wait_s: the longest a trial waits for a stage another trial trains (None: for ever).
        keep: "all" (--keep-all-weights), or the keys of the stages whose handover a student reads
            or whose weights the spec's `export:` asks for.
        export: the keys of the exportable stages (the spec's `export:`): one stored earlier without
            its weights is trained again to keep them (a late handover, orchestrator/plan.py, kept_keys).
        data: each dataset's prepared data in the object store, by its DataConfig (missing: a task
            prepares its own).
        progress: what the trial's reports say of the sweep's progress (orchestrator/progress.py).
        readers: handover stage -> the stages of the sweep that read it (its students), for the
            stages whose weights go once every reader is stored (orchestrator/plan.py,
            releasable_handovers); empty: every handover stays (--keep-all-weights).
    """

    store_root: str
    reuse: bool = True
    task_cpus: float = 1.0
    task_gpus: float = 0.0
    llm_task_gpus: float = 0.0
    stage_wait_s: float | None = None
    keep: str | frozenset[str] = "all"
    data: Mapping[DataConfig, ray.ObjectRef] = field(default_factory=dict)
    progress: ProgressPlan | None = None  # stages done of planned and the expected finish, in each report
    export: frozenset[str] = frozenset()
    readers: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def store(self, trial_key: str) -> StageStore:
        return StageStore(trial_store_root(self.store_root, self.reuse, trial_key))


@dataclass(frozen=True)
class StageRun:
    """A stage task's answer: the stage's result as stored, and where the task ran."""

    result: dict  # the stage's result.json: key, generation, metrics, ...
    node_id: str
    gpu_ids: str = ""  # what Ray assigned the task ("" on the CPU)
    device: str = ""  # the torch device it used


def _stage_run(result: dict, seen: dict) -> StageRun:
    return StageRun(result, ray.get_runtime_context().get_node_id(), seen.get("gpu_ids", ""), seen.get("device", ""))


def _prepare_data(data: DataConfig):
    """A dataset loaded, capped and tokenised, as a Ray task whose result every stage reads."""
    from trainables.stage import prepare_data

    return prepare_data(data)


def prepare_data_refs(trials: list[TrialPlan]) -> dict[DataConfig, ray.ObjectRef]:
    """Each dataset of the sweep prepared once, in a worker (the driver never loads a tokeniser) while
    Tune starts; the driver owns the results, so they live as long as the sweep. Zero CPUs: it never
    waits for a slot the trials hold, and a stage task simply waits for its data."""
    configs = dict.fromkeys(s.data for t in trials for s in t.all_stages)
    task = ray.remote(num_cpus=0)(_prepare_data)
    return {d: task.remote(d) for d in configs}


def _run_stage(spec: StageSpec, parent, parent_result, data_map, store_root: str, threads: int,
               label: str = "", keep: bool = True, data=None) -> tuple:
    """A generation as a Ray task; returns (handover or None, StageRun) as two objects."""
    import torch

    from trainables.stage import run_stage

    torch.set_num_threads(max(1, threads))
    _label_logs(label)
    logging.getLogger("trainables.stage").setLevel(logging.INFO)
    device, seen = task_device(spec.device)
    spec = dataclasses.replace(spec, device=device)  # the device is not part of a stage's key
    handover, result = run_stage(spec, parent, parent_result, data_map, StageStore(store_root), keep=keep, data=data)
    return handover, _stage_run(result, seen)


run_stage_task = StageTask(_run_stage, num_returns=2)


def _run_llm_stage(spec, store_root: str, threads: int, label: str = "") -> StageRun:
    """An LLM stage (an LLMStageSpec) as a Ray task."""
    import torch

    from trainables.llm.stage import run_llm_stage

    torch.set_num_threads(max(1, threads))
    _label_logs(label)
    for name in ("trainables.llm.stage", "trainables.llm.generate"):
        logging.getLogger(name).setLevel(logging.INFO)
    device, seen = task_device(spec.device)
    result = run_llm_stage(dataclasses.replace(spec, device=device), StageStore(store_root))
    return _stage_run(result, seen)


run_llm_stage_task = StageTask(_run_llm_stage)


def _label_logs(label: str) -> None:
    """Every log line of this task says which trial and generation it belongs to (a CPU worker
    runs many tasks, so the format is set per task, not once)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING)
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter(f"[{label}] %(levelname)s %(message)s" if label else
                                               "%(levelname)s %(name)s: %(message)s"))


def claim_stage(store: StageStore, key: str, holder: str, wait_s: float | None,
                run: Callable[[], dict]) -> tuple[dict, bool]:
    """A stage's result, from the store or from `run()`: one runner per key across the sweep.

    A stage another trial is running is waited for (at most `wait_s`) and then read. A stage that
    diverged is not run again: it is deterministic, so a retry would diverge the same way.
    Returns (result, whether this call ran it).
    """
    if store.has(key):
        return store.load_result(key), False
    failed = store.root / f"{key}.diverged"
    if failed.exists():
        raise DivergedError(failed.read_text())
    with store.claim(key, timeout_s=wait_s, holder=f"{holder} on {socket.gethostname()}, pid {os.getpid()}") as must:
        if not must:
            return store.load_result(key), False
        if failed.exists():  # the runner we waited for diverged: do not run it again
            raise DivergedError(failed.read_text())
        return run(), True


class _Chain:
    """Runs or finds the stages of one trial, keeping ObjectRefs of handovers for the next one."""

    def __init__(self, store: StageStore, cpus: float, gpus: float, trial_key: str = "", wait_s: float | None = None,
                 keep: str | frozenset[str] | set[str] = "all", data: Mapping[DataConfig, ray.ObjectRef] | None = None,
                 export: frozenset[str] = frozenset()):
        self.store, self.cpus, self.gpus, self.trial_key, self.wait_s = store, cpus, gpus, trial_key, wait_s
        self.keep = keep  # "all", or the keys of the stages whose handover a student of the sweep reads
        self.export = export  # the exportable stages: their weights are kept, also for stages stored without
        self.data = data or {}  # DataConfig -> the sweep's prepared data (missing: each task prepares its own)
        self.handovers: dict[str, ray.ObjectRef] = {}
        self.weights_node: dict[str, str] = {}  # where each handover object was made (for cluster checks)
        self.trained: list[str] = []
        self.runs: dict[str, StageRun] = {}  # where each stage this chain trained ran
        self._data_maps: dict[str, ray.ObjectRef] = {}
        self._specs: dict[str, tuple[StageSpec, str | None]] = {}  # what ensure() saw: to train a stage again

    def keeps(self, key: str) -> bool:
        return self.keep == "all" or key in self.keep

    def handover_ref(self, key: str) -> ray.ObjectRef:
        """A finished stage's handover: the task's own, else from disk, else (the stage kept none,
        e.g. it was the last generation of a shorter chain) the stage trained again to make it."""
        if key not in self.handovers:
            handover = load_handover(self.store, key)
            if handover is None:
                _logger.warning("stage %s kept no handover (weights, training-set logits); training it again for "
                                "its student (--keep-all-weights keeps every stage's)", key)
                self._train(*self._specs[key], keep=True)
            else:
                self.handovers[key] = ray.put(handover)
                self.weights_node[key] = ray.get_runtime_context().get_node_id()
        return self.handovers[key]

    def data_map_ref(self, key: str) -> ray.ObjectRef:
        """The data-map arrays, read from disk and put in the object store once per trial."""
        if key not in self._data_maps:
            arrays = self.store.load_arrays(key)
            self._data_maps[key] = ray.put({k: arrays[k] for k in DATA_MAP_ARRAYS})
        return self._data_maps[key]

    def ensure(self, spec: StageSpec, data_map_key: str | None) -> dict:
        key = spec.key()
        self._specs[key] = (spec, data_map_key)
        holder = f"trial {self.trial_key} (generation {spec.generation})"
        result, trained = claim_stage(self.store, key, holder, self.wait_s,
                                      lambda: self._train(spec, data_map_key, self.keeps(key)))
        if trained:
            self.trained.append(key)
        elif key in self.export and load_handover(self.store, key) is None:
            # stored by a sweep that did not export it: trained again only to keep its weights beside it
            _logger.warning("stage %s is in the spec's export: but was stored without weights; training it again "
                            "to keep them (its stored numbers stay)", key)
            self._train(spec, data_map_key, keep=True)
        return result

    def _train(self, spec: StageSpec, data_map_key: str | None, keep: bool) -> dict:
        """Run one stage as a Ray task; its handover's ObjectRef is kept when it makes one."""
        key = spec.key()
        parent_h = self.handover_ref(spec.parent) if spec.parent else None
        parent_r = self.store.load_result(spec.parent) if spec.parent else None
        data_map = self.data_map_ref(data_map_key) if data_map_key not in (None, key) else None
        task = run_stage_task.options(self.cpus, self.gpus)
        h_ref, run_ref = task.remote(spec, parent_h, parent_r, data_map, str(self.store.root),
                                     max(1, round(self.cpus)), f"{self.trial_key} g{spec.generation}", keep,
                                     self.data.get(spec.data))
        try:
            run: StageRun = ray.get(run_ref)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, DivergedError):
                message = f"generation {spec.generation} of {self.trial_key} ({key}): {exc.cause}"
                (self.store.root / f"{key}.diverged").write_text(message)
                raise DivergedError(message) from None
            raise
        if keep:
            self.handovers[key] = h_ref
        self.weights_node[key] = run.node_id
        self.runs[key] = run
        return run.result

    def release(self, key: str) -> None:
        """Drop our reference to a generation's handover once its student exists: a chain holds
        at most two generations in the object store, not all of them."""
        self.handovers.pop(key, None)


def release_read_handovers(store: StageStore, key: str, readers: frozenset[str]) -> int:
    """Remove stage `key`'s stored weights (and a late handover's) once every stage that reads
    them is stored: bytes freed. Its numbers stay; a later sweep whose student needs the weights
    trains the stage again and uses them only if they reproduce its stored test logits
    (trainables/stage.py, run_stage)."""
    if not readers or not all(store.has(r) for r in readers):
        return 0
    why = f"every reader stored: {', '.join(sorted(readers))}"
    freed = store.release_weights(key, why)
    if (store.root / LATE_HANDOVERS / key).is_dir():
        freed += late_handovers(store).release_weights(key, why)
    if freed:
        _logger.info("stage %s: its weights (%d bytes) removed, every stage that reads them is stored", key, freed)
    return freed


def trial_store_root(store_root: str | Path, reuse: bool, trial_key: str) -> Path:
    """Where a trial's stages live: the sweep's shared store, or a store of its own (--no-reuse)."""
    return Path(store_root) if reuse else Path(store_root) / trial_key


def run_llm_trial(plan: LLMTrialPlan, store: StageStore, settings: TrialSettings) -> None:
    """An LLM trial: find its one stage in the store or run it as a Ray task, then report it to Tune.

    No checkpoint: the stage store is the trial's state (a restarted trial finds its stage there).
    """
    spec = plan.stages[0]
    runs: list[StageRun] = []

    def run() -> dict:
        task = run_llm_stage_task.options(settings.task_cpus, settings.llm_task_gpus)
        runs.append(ray.get(task.remote(spec, str(store.root), max(1, round(settings.task_cpus)), f"{plan.key} llm")))
        return runs[0].result

    result, trained = claim_stage(store, spec.key(), f"trial {plan.key}", settings.stage_wait_s, run)
    metrics = {k: result["metrics"][k] for k in LLM_REPORTED if k in result["metrics"]}
    where = runs[0] if runs else StageRun(result, "")
    tune.report({"generation": spec.generation, "stage_trained": int(trained), **metrics, "stage": spec.key(),
                 "task_gpu_ids": where.gpu_ids, "task_device": where.device, **progress_metrics(settings.progress)})


def run_chain_trial(plan: TrialPlan, store: StageStore, settings: TrialSettings,
                    report: Callable[[StageSpec, dict], dict] | None = None) -> None:
    """A chain's trial: each generation found or trained in turn, reported to Tune with a checkpoint.

    `report(stage, result)` gives a generation's metrics for Tune (default: REPORTED); it is
    called for every generation in order, also those Tune already has, so it may keep a history.
    """
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            start = json.loads((Path(d) / "state.json").read_text())["generation"]
        _logger.info("trial %s resumes after generation %d", plan.key, start)
    chain = _Chain(store, settings.task_cpus, settings.task_gpus, plan.key, settings.stage_wait_s,
                   settings.keep, settings.data, settings.export)
    map_key = plan.data_map.key() if plan.data_map else (plan.stages[0].key() if plan.stages[0].records_data_map else None)
    if plan.data_map is not None:
        chain.ensure(plan.data_map, None)
    for spec in plan.stages:
        result = chain.ensure(spec, map_key)
        if spec.parent:
            chain.release(spec.parent)
            readers = settings.readers.get(spec.parent, frozenset())
            if not settings.reuse:  # a store of this trial's own: only its own students read there
                readers = readers & {s.key() for s in plan.stages}
            release_read_handovers(store, spec.parent, readers)
        g = spec.generation
        metrics = report(spec, result) if report else {k: result["metrics"][k] for k in REPORTED
                                                         if k in result["metrics"]}
        if g <= start:
            continue  # Tune already has this generation's report
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "state.json").write_text(json.dumps({"generation": g, "stage": spec.key()}))
            where = chain.runs.get(spec.key(), StageRun(result, ""))
            nodes = {"task_node": where.node_id,
                     "weights_node": chain.weights_node.get(spec.parent, "") if spec.parent else "",
                     "task_gpu_ids": where.gpu_ids, "task_device": where.device}
            tune.report({"generation": g, "stage_trained": int(spec.key() in chain.trained), **metrics,
                         "stage": spec.key(), **nodes, **progress_metrics(settings.progress)},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def run_trial(config: dict, plans: Mapping[str, TrialPlan | LLMTrialPlan], settings: TrialSettings) -> None:
    """The Tune function trainable: config {"trial": key}; the plans and settings via with_parameters."""
    plan = plans[config["trial"]]
    kind_of(plan).run(plan, settings.store(plan.key), settings)
