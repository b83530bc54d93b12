"""A sweep's trials (seed x dataset x method) and the stages each needs, shared ones found by key.

Two trials that share a prefix (same data, model, seed and teacher recipe; the same first k
generations) name the same stage keys, so the prefix is trained once (docs/design.md, Stages and their keys).
The plain-CE teacher of a (dataset, seed) doubles as the data-map run that MixUp teachers and OOD
fine-tuning need (an LCL teacher maps its own run). A method that carries its own encoder or
training settings (`electra_lcl`) has them in its stages' keys, so it never shares a stage with
a method on another encoder. `--dry-run` prints this plan.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from orchestrator.spec import DatasetEntry, SweepSpec
from trainables.data import data_fingerprint
from trainables.llm.methods import LLMMethodConfig
from trainables.llm.stage import LLMSettings, LLMStageSpec
from trainables.methods.registry import DistillConfig, MethodConfig, MixupConfig
from trainables.stage import DataConfig, StageSpec


@dataclass(frozen=True)
class TrialPlan:
    """One Ray Tune trial: a chain of generations for one (seed, dataset, method)."""

    seed: int
    dataset: str
    method: MethodConfig
    data_map: StageSpec | None  # trained first when the chain needs it and does not start with it
    stages: tuple[StageSpec, ...]  # generation 1..G

    @property
    def key(self) -> str:
        return f"{self.dataset}-{self.method.name}-seed{self.seed}"

    @property
    def fingerprint(self) -> str:
        """What the trial's numbers depend on: its stage keys (each with the stage format
        version), how its generations are reported, and the package version. An MLflow run is
        continued only by a trial with the same fingerprint (orchestrator/tracking.py)."""
        from orchestrator.tracking import package_version

        method = dataclasses.asdict(self.method)
        method.pop("description")
        payload = {"stages": [s.key() for s in self.all_stages], "method": method, "version": package_version()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]

    @property
    def all_stages(self) -> tuple[StageSpec, ...]:
        return ((self.data_map,) if self.data_map else ()) + self.stages


@dataclass(frozen=True)
class LLMTrialPlan:
    """One Ray Tune trial of an LLM row: one prompt (seed) on one dataset's ID and OOD test sets.

    The same face as a chain's TrialPlan (key, fingerprint, stages) with a single stage, so
    the sweep, the recorder and --resume treat it like a one-generation chain.
    """

    seed: int
    dataset: str
    method: LLMMethodConfig
    stages: tuple[LLMStageSpec, ...]
    data_map: None = None

    kind = "llm"  # the MLflow tag of its runs (orchestrator/tracking.py, KIND_TAG)
    key = TrialPlan.key
    all_stages = TrialPlan.all_stages

    @property
    def fingerprint(self) -> str:
        from orchestrator.tracking import package_version

        method = dataclasses.asdict(self.method)
        method.pop("description")
        payload = {"stages": [s.key() for s in self.stages], "method": method, "version": package_version()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def llm_trial_plans(spec: SweepSpec, entry: DatasetEntry, method: LLMMethodConfig, data: DataConfig) -> list[LLMTrialPlan]:
    """One trial per prompt: zero-shot runs once (greedy), few-shot prompt i draws with the i-th seed."""
    data = dataclasses.replace(data, model=method.model)
    settings = LLMSettings(shots_per_class=method.shots_per_class, max_new_tokens=method.max_new_tokens,
                           batch_size=method.batch_size, examples_from=method.examples_from)
    return [LLMTrialPlan(seed=seed, dataset=entry.name, method=method,
                         stages=(LLMStageSpec(seed=seed, data=data, llm=settings, n_bins=spec.n_bins, device=spec.device),))
            for seed in spec.seeds[:method.prompts]]


def _data_config(spec: SweepSpec, entry: DatasetEntry) -> DataConfig:
    fingerprint = "+".join(data_fingerprint(s, spec.data_root, spec.data.split_seed) for s in entry.sources)
    # the data root is where the bytes are, not what they are: it stays out of the key
    return DataConfig(dataset=entry.source, ood_dataset=entry.ood, data_root=spec.data_root, model=spec.model,
                      max_length=spec.max_length, split_seed=spec.data.split_seed,
                      max_train=spec.data.max_train, max_eval=spec.data.max_eval, fingerprint=fingerprint)


def trial_plan(spec: SweepSpec, entry: DatasetEntry, method: MethodConfig, seed: int,
               data: DataConfig | None = None) -> TrialPlan:
    data = data or _data_config(spec, entry)
    if method.model is not None:  # the row's own encoder: in DataConfig, hence in every stage key
        data = dataclasses.replace(data, model=method.model)
    base = dict(seed=seed, data=data, train=method.train_config(entry.train), ood=entry.ood_finetune,
                n_bins=spec.n_bins, device=spec.device, distill=DistillConfig())
    ce_teacher = StageSpec(generation=1, teacher=MixupConfig("none"), **base)
    needs_map = method.teacher.needs_data_map or entry.ood_finetune is not None
    data_map = None
    if method.teacher.kind == "none":  # whatever MixUp options a custom CE variant carries
        first = ce_teacher
    elif method.teacher.is_own_data_map:
        first = StageSpec(generation=1, teacher=method.teacher, **base)
    else:
        data_map = ce_teacher if needs_map else None
        first = StageSpec(generation=1, teacher=method.teacher, data_map=ce_teacher.key() if needs_map else None, **base)
    map_key = (data_map or first).key() if needs_map else None
    stages = [first]
    for g in range(2, method.generations + 1):
        stages.append(StageSpec(generation=g, teacher=MixupConfig("none"), parent=stages[-1].key(), data_map=map_key,
                                **{**base, "distill": method.distill}))
    return TrialPlan(seed=seed, dataset=entry.name, method=method, data_map=data_map, stages=tuple(stages))


def build_plan(spec: SweepSpec) -> list[TrialPlan | LLMTrialPlan]:
    data = {entry.name: _data_config(spec, entry) for entry in spec.datasets}  # hash each dataset's files once
    from orchestrator.kinds import kind_of  # it builds on this module's plans

    return [plan for entry in spec.datasets for method in spec.methods
            for plan in kind_of(method).plans(spec, entry, method, data[entry.name])]


def handover_keys(trials: list[TrialPlan]) -> set[str]:
    """The stages whose handover (weights, training-set logits) a student of the sweep reads: the
    parents. No other stage's weights go into the object store or the stage store (issue 14)."""
    return {s.parent for t in trials for s in t.stages if s.parent}


def releasable_handovers(trials: list[TrialPlan], keep: set[str], keep_all: bool = False) -> dict[str, frozenset[str]]:
    """Handover stage -> the students of the sweep that read it, for every handover not in `keep`
    (the spec's export: stages): its weights can go once all of those are stored. None with
    `keep_all` (--keep-all-weights)."""
    if keep_all:
        return {}
    readers: dict[str, set[str]] = {}
    for t in trials:
        for s in t.stages:
            if s.parent and s.parent not in keep:
                readers.setdefault(s.parent, set()).add(s.key())
    return {k: frozenset(v) for k, v in readers.items()}


def export_keys(trials: list[TrialPlan], pairs) -> set[str]:
    """Every generation's stage of the trials whose (dataset, method) the spec's `export:` names:
    g* is known only once every seed has finished, so each generation keeps its weights."""
    wanted = set(pairs)
    return {s.key() for t in trials if (t.dataset, t.method.name) in wanted for s in t.stages}


def kept_keys(spec: SweepSpec, trials: list) -> set[str]:
    """The stages that store their weights: the parents a student reads, and the exportable ones."""
    from orchestrator.kinds import kind_of

    chains = [t for t in trials if kind_of(t).trains]
    return handover_keys(chains) | export_keys(chains, spec.export)


def weights_cost(trials: list, keys: set[str]) -> dict:
    """How many unique stages among `keys` store weights, and their size on disk: per stage, the
    fp32 state (encoder + head) as safetensors stores it, counted from the encoder's config."""
    from trainables.data import DATASETS
    from trainables.models import state_bytes

    sizes: dict[str, int] = {}
    for t in trials:
        for s in t.all_stages:
            if s.key() in keys and s.key() not in sizes:
                source = s.data.dataset
                labels = DATASETS[source].labels if isinstance(source, str) else source.labels
                try:
                    sizes[s.key()] = state_bytes(s.data.model, len(labels))
                except (OSError, ValueError):  # an encoder neither here nor in HUB_CONFIGS: count it, size unknown
                    sizes[s.key()] = None
    known = [b for b in sizes.values() if b is not None]
    return {"stages": len(sizes), "bytes": sum(known) if len(known) == len(sizes) else None}


def launch_order(trials: list[TrialPlan]) -> list[TrialPlan]:
    """The trials in the order Tune starts them: a stage's trainer before the trials that read it.

    A trial that reaches a stage another trial is training waits for it in its slot, holding its
    CPUs and GPU share idle. So each shared stage is trained by the shortest trial that has it
    (it frees its slot soonest; ties go to the spec's order), and trials come in waves: wave 0
    trains everything it needs itself; a trial reading stages trained by wave-w trials comes in
    wave w+1. In the paper's sweep: CE teachers, then the methods that distil them or read their
    data maps (Sim-MixUp teachers among them), then the students of the Sim-MixUp teachers.
    Within a wave the spec's order stays.
    """
    keys = [[s.key() for s in t.all_stages] for t in trials]
    by_length = sorted(range(len(trials)), key=lambda i: (len(keys[i]), i))
    trainer: dict[str, int] = {}
    for i in by_length:
        for k in keys[i]:
            trainer.setdefault(k, i)
    wave: dict[int, int] = {}
    for i in by_length:  # a trainer sorts before its readers here, so its wave is known
        waits_on = {trainer[k] for k in keys[i] if trainer[k] != i}
        wave[i] = 1 + max(wave[j] for j in waits_on) if waits_on else 0
    return [trials[i] for i in sorted(range(len(trials)), key=lambda i: (wave[i], i))]


def plan_summary(spec: SweepSpec, trials: list[TrialPlan | LLMTrialPlan]) -> dict:
    """Trials, stages needed, stages after sharing, and the resources asked for."""
    from orchestrator.kinds import kind_of

    keys = [s.key() for t in trials for s in t.all_stages]
    return {
        "spec": spec.name,
        "trials": [{"trial": t.key, "seed": t.seed, "dataset": t.dataset, "method": t.method.name,
                    "generations": len(t.stages), "stages": [s.key() for s in t.all_stages],
                    **kind_of(t).summary(t)} for t in trials],
        "stages_total": len(keys),
        "stages_unique": len(set(keys)),
        "resources": {"cpus_per_trial": spec.resources.cpus_per_trial, "gpus_per_trial": spec.resources.gpus_per_trial,
                      "gpus_per_llm_trial": spec.resources.gpus_per_llm_trial,
                      "max_concurrent_trials": spec.resources.max_concurrent_trials},
        "model": spec.model,
    }


def weights_summary(spec: SweepSpec, trials: list) -> dict:
    """The disk cost of the weights a sweep keeps: for students alone, and with `export:` too."""
    from orchestrator.kinds import kind_of

    chains = [t for t in trials if kind_of(t).trains]
    students = handover_keys(chains)
    pairs = {(t.dataset, t.method.name) for t in chains}
    per_pair = [weights_cost(chains, export_keys(chains, [pair]) - students) for pair in sorted(pairs)]
    return {"for_students": weights_cost(chains, students),
            "one_more_pair": max(per_pair, key=lambda c: c["stages"], default={"stages": 0, "bytes": 0}),
            "with_export": weights_cost(chains, kept_keys(spec, trials)),
            "every_stage": weights_cost(chains, {s.key() for t in chains for s in t.all_stages})}
