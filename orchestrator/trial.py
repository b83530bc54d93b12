"""One Ray Tune trial: a (seed, dataset, method) chain, each generation a Ray task.

The trainable only drives: for each stage it either finds it finished in the stage store
(trained by another trial, or before a restart) or claims it and runs it as a Ray task that
lands in the trial's placement group. A generation task returns (handover, result); the
handover's ObjectRef (weights and training-set logits) goes straight into the next generation's
task, so weights travel through the object store as CPU numpy arrays, never a temp file or the
driver (docs/design.md, Handovers). Only stages that some generation of the sweep reads make a handover
(`sweep["keep"]`, from orchestrator/plan.py's `handover_keys`, or "all" with --keep-all-weights).
After each generation the trial gives Tune a report and a checkpoint, so a restarted trial
resumes at its last finished generation. Trials never touch MLflow: each report names its
stage, and the driver logs it (orchestrator/recorder.py).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import ray
from ray import tune

from orchestrator.placement import StageTask, task_device
from orchestrator.plan import LLMTrialPlan, TrialPlan, plan_from_dict
from orchestrator.tracking import KIND_TAG, PlannedRun
from trainables.stage import StageSpec, load_handover
from trainables.store import StageStore
from trainables.train import DivergedError

_logger = logging.getLogger(__name__)

# what MixUp teachers and OOD fine-tuning read of the data-map stage
DATA_MAP_ARRAYS = ("gold_probs", "correct", "last_logits")
# Fault injection for the resume tests: "<trial key>:<generation>" makes that trial's process
# SIGKILL itself once while that generation's task runs, as a dying worker would.
FAULT_ENV = "EMOCAL_FAULT_KILL_TRIAL"
# Tune's progress table shows the first few metrics of a report: generation, trained or shared,
# then these in this order
REPORTED = ("val_macro_f1", "test_ece", "test_macro_f1", "test_weighted_f1", "test_ece_ts", "temperature", "ood_ece")
LLM_REPORTED = ("test_macro_f1", "test_ece", "test_unusable", "ood_macro_f1", "ood_ece", "ood_unusable")


def _prepare_data(data_dict: dict):
    """A dataset loaded, capped and tokenised, as a Ray task whose result every stage reads."""
    from trainables.stage import DataConfig, prepare_data

    return prepare_data(DataConfig.from_dict(data_dict))


def data_key(data_dict: dict) -> str:
    """The name of a DataConfig's prepared data in the sweep settings (`sweep["data"]`)."""
    return json.dumps(data_dict, sort_keys=True, default=str)


def prepare_data_refs(trials: list[TrialPlan]) -> dict[str, ray.ObjectRef]:
    """Each dataset of the sweep prepared once, in a worker (the driver never loads a tokeniser) while
    Tune starts; the driver owns the results, so they live as long as the sweep. Zero CPUs: it never
    waits for a slot the trials hold, and a stage task simply waits for its data."""
    configs = {data_key(d): d for d in (dataclasses.asdict(s.data) for t in trials for s in t.all_stages)}
    task = ray.remote(num_cpus=0)(_prepare_data)
    return {k: task.remote(d) for k, d in configs.items()}


def _run_stage(spec_dict: dict, parent, parent_result, data_map, store_root: str, threads: int,
               label: str = "", keep: bool = True, data=None):
    """A generation as a Ray task; returns (handover or None, result) as two objects."""
    import torch

    from trainables.stage import run_stage

    torch.set_num_threads(max(1, threads))
    _label_logs(label)
    logging.getLogger("trainables.stage").setLevel(logging.INFO)
    device, seen = task_device(spec_dict.get("device", "auto"))
    spec = StageSpec.from_dict({**spec_dict, "device": device})  # the device is not part of a stage's key
    handover, result = run_stage(spec, parent, parent_result, data_map, StageStore(store_root), keep=keep, data=data)
    return handover, {**result, "node_id": ray.get_runtime_context().get_node_id(), "placement": seen}


run_stage_task = StageTask(_run_stage, num_returns=2)


def _run_llm_stage(spec_dict: dict, store_root: str, threads: int, label: str = "") -> dict:
    """An LLM stage as a Ray task; returns its result."""
    import torch

    from trainables.llm.stage import LLMStageSpec, run_llm_stage

    torch.set_num_threads(max(1, threads))
    _label_logs(label)
    for name in ("trainables.llm.stage", "trainables.llm.generate"):
        logging.getLogger(name).setLevel(logging.INFO)
    device, seen = task_device(spec_dict.get("device", "auto"))
    spec = LLMStageSpec.from_dict({**spec_dict, "device": device})
    result = run_llm_stage(spec, StageStore(store_root))
    return {**result, "node_id": ray.get_runtime_context().get_node_id(), "placement": seen}


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


class _Chain:
    """Runs or finds the stages of one trial, keeping ObjectRefs of handovers for the next one."""

    def __init__(self, store: StageStore, cpus: float, gpus: float, trial_key: str = "", wait_s: float | None = None,
                 keep: str | set[str] = "all", data: dict[str, ray.ObjectRef] | None = None):
        self.store, self.cpus, self.gpus, self.trial_key, self.wait_s = store, cpus, gpus, trial_key, wait_s
        self.keep = keep  # "all", or the keys of the stages whose handover a student of the sweep reads
        self.data = data or {}  # data_key -> the sweep's prepared data (None: each task prepares its own)
        self.handovers: dict[str, ray.ObjectRef] = {}
        self.weights_node: dict[str, str] = {}  # where each handover object was made (for cluster checks)
        self.trained: list[str] = []
        self.task_node: dict[str, str] = {}
        self.task_placement: dict[str, dict] = {}  # GPU ids and device each trained stage's task saw
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
        if self.store.has(key):
            return self.store.load_result(key)
        failed = self.store.root / f"{key}.diverged"
        if failed.exists():  # deterministic: a retry of the trial would diverge the same way
            raise DivergedError(failed.read_text())
        holder = f"trial {self.trial_key} (generation {spec.generation}) on {socket.gethostname()}, pid {os.getpid()}"
        with self.store.claim(key, timeout_s=self.wait_s, holder=holder) as must_train:
            if not must_train:
                return self.store.load_result(key)
            if failed.exists():  # the trainer we waited for diverged: do not train it again
                raise DivergedError(failed.read_text())
            result = self._train(spec, data_map_key, self.keeps(key))
            self.trained.append(key)
            return result

    def _train(self, spec: StageSpec, data_map_key: str | None, keep: bool) -> dict:
        """Run one stage as a Ray task; its handover's ObjectRef is kept when it makes one."""
        key = spec.key()
        failed = self.store.root / f"{key}.diverged"
        parent_h = self.handover_ref(spec.parent) if spec.parent else None
        parent_r = self.store.load_result(spec.parent) if spec.parent else None
        data_map = self.data_map_ref(data_map_key) if data_map_key not in (None, key) else None
        spec_dict = _spec_dict(spec)
        task = run_stage_task.options(self.cpus, self.gpus)
        h_ref, r_ref = task.remote(spec_dict, parent_h, parent_r, data_map, str(self.store.root),
                                   max(1, round(self.cpus)), f"{self.trial_key} g{spec.generation}", keep,
                                   self.data.get(data_key(spec_dict["data"])))
        self._maybe_fault(spec.generation)
        try:
            result = ray.get(r_ref)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, DivergedError):
                message = f"generation {spec.generation} of {self.trial_key} ({key}): {exc.cause}"
                failed.write_text(message)
                raise DivergedError(message) from None
            raise
        if keep:
            self.handovers[key] = h_ref
        self.weights_node[key] = self.task_node[key] = result.pop("node_id")
        self.task_placement[key] = result.pop("placement")
        return result

    def release(self, key: str) -> None:
        """Drop our reference to a generation's handover once its student exists: a chain holds
        at most two generations in the object store, not all of them."""
        self.handovers.pop(key, None)

    def _maybe_fault(self, generation: int) -> None:
        if os.environ.get(FAULT_ENV) != f"{self.trial_key}:{generation}":
            return
        marker = self.store.root / f".fault-{self.trial_key}-g{generation}"
        if marker.exists():
            return
        marker.touch()
        time.sleep(2.0)  # let the generation get going
        os.kill(os.getpid(), signal.SIGKILL)


def trial_store_root(store_root: str | Path, reuse: bool, trial_key: str) -> Path:
    """Where a trial's stages live: the sweep's shared store, or a store of its own (--no-reuse)."""
    return Path(store_root) if reuse else Path(store_root) / trial_key


def _spec_dict(spec: StageSpec) -> dict:
    return dataclasses.asdict(spec)


def trial_gpus(plan: TrialPlan | LLMTrialPlan, resources) -> float:
    """GPUs of one trial: an LLM trial's own share (a whole card by default), else the chains'."""
    return resources.gpus_per_llm_trial if isinstance(plan, LLMTrialPlan) else resources.gpus_per_trial


def run_llm_trial(plan: LLMTrialPlan, store: StageStore, sweep: dict) -> None:
    """An LLM trial: find its one stage in the store or run it as a Ray task, then report it to Tune.

    No checkpoint: the stage store is the trial's state (a restarted trial finds its stage there).
    """
    spec = plan.stages[0]
    key = spec.key()
    holder = f"trial {plan.key} on {socket.gethostname()}, pid {os.getpid()}"
    result, placement, trained = None, {}, False
    if not store.has(key):
        with store.claim(key, timeout_s=sweep.get("stage_wait_s"), holder=holder) as must_run:
            if must_run:
                task = run_llm_stage_task.options(sweep["task_cpus"], sweep["llm_task_gpus"])
                result = ray.get(task.remote(_spec_dict(spec), str(store.root), max(1, round(sweep["task_cpus"])),
                                             f"{plan.key} llm"))
                placement, trained = result.pop("placement"), True
                result.pop("node_id")
    if result is None:  # run before (a restart, or a zero-shot stage another seed's trial ran)
        result = store.load_result(key)
    metrics = {k: result["metrics"][k] for k in LLM_REPORTED if k in result["metrics"]}
    tune.report({"generation": spec.generation, "stage_trained": int(trained), **metrics, "stage": key,
                 "task_gpu_ids": placement.get("gpu_ids", ""), "task_device": placement.get("device", "")})


def run_trial(config: dict, plans: dict[str, dict], sweep: dict) -> None:
    """The Tune function trainable: config {"trial": key}; plans and sweep settings via with_parameters."""
    plan = plan_from_dict(plans[config["trial"]])
    store = StageStore(trial_store_root(sweep["store_root"], sweep["reuse"], plan.key))
    if isinstance(plan, LLMTrialPlan):
        return run_llm_trial(plan, store, sweep)
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            start = json.loads((Path(d) / "state.json").read_text())["generation"]
        _logger.info("trial %s resumes after generation %d", plan.key, start)
    keep = sweep.get("keep", "all")
    chain = _Chain(store, sweep["task_cpus"], sweep["task_gpus"], plan.key, sweep.get("stage_wait_s"),
                   keep if keep == "all" else set(keep), sweep.get("data"))
    map_key = plan.data_map.key() if plan.data_map else (plan.stages[0].key() if plan.stages[0].records_data_map else None)
    if plan.data_map is not None:
        chain.ensure(plan.data_map, None)
    for spec in plan.stages:
        result = chain.ensure(spec, map_key)
        if spec.parent:
            chain.release(spec.parent)
        g = spec.generation
        if g <= start:
            continue  # Tune already has this generation's report
        metrics = {k: result["metrics"][k] for k in REPORTED if k in result["metrics"]}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "state.json").write_text(json.dumps({"generation": g, "stage": spec.key()}))
            placement = chain.task_placement.get(spec.key(), {})
            nodes = {"task_node": chain.task_node.get(spec.key(), ""),
                     "weights_node": chain.weights_node.get(spec.parent, "") if spec.parent else "",
                     "task_gpu_ids": placement.get("gpu_ids", ""), "task_device": placement.get("device", "")}
            tune.report({"generation": g, "stage_trained": int(spec.key() in chain.trained), **metrics,
                         "stage": spec.key(), **nodes}, checkpoint=tune.Checkpoint.from_directory(tmp))


def planned_run(plan: TrialPlan | LLMTrialPlan, spec_name: str) -> PlannedRun:
    """The trial's MLflow run as the driver creates it: tags to filter and group by, params."""
    if isinstance(plan, LLMTrialPlan):
        m, stage = plan.method, plan.stages[0]
        tags = {"seed": str(plan.seed), "dataset": plan.dataset, "method": m.name, "generations": "1",
                "emocal.ece": "raw", "emocal.report_generation": "best", KIND_TAG: LLMTrialPlan.kind}
        params = {"seed": plan.seed, "dataset": plan.dataset, "method": m.name, "model": m.model,
                  "shots_per_class": m.shots_per_class, "prompts": m.prompts, "max_new_tokens": m.max_new_tokens,
                  "batch_size": m.batch_size, "max_eval": stage.data.max_eval or "", "spec": spec_name,
                  "n_bins": stage.n_bins}
        return PlannedRun(plan.key, plan.fingerprint, tags, params)
    tags = {"seed": str(plan.seed), "dataset": plan.dataset, "method": plan.method.name,
            "generations": str(len(plan.stages)), "emocal.ece": "ts" if plan.method.reports_scaled_ece else "raw",
            "emocal.report_generation": plan.method.report_generation}
    return PlannedRun(plan.key, plan.fingerprint, tags, _params(plan, spec_name))


def _params(plan: TrialPlan, spec_name: str) -> dict:
    first = plan.stages[0]
    return {
        "seed": plan.seed, "dataset": plan.dataset, "method": plan.method.name,
        "teacher": plan.method.teacher.kind, "distill": plan.method.distill.kind,
        "generations": len(plan.stages), "scale_student": plan.method.distill.scale_student,
        "post_hoc_ts": plan.method.post_hoc_ts, "model": first.data.model, "max_length": first.data.max_length,
        "epochs": first.train.epochs, "batch_size": first.train.batch_size, "lr": first.train.lr,
        "ood_percents": ",".join(f"{p:g}" for p in first.ood.percents) if first.ood else "",
        "spec": spec_name, "n_bins": first.n_bins,
    }
