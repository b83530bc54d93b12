"""What differs between the kinds of method, in one place: a trained chain, or a prompted LLM row.

Every method config says its kind (`MethodConfig.kind` is "chain", `LLMMethodConfig.kind` is
"llm"; both kinds' presets are in the one registry, trainables/methods/registry.py). The spec's
checks, the plan, the sweep's resource check, the trial and the trial's MLflow run ask
`kind_of(method or plan)` rather than testing types, so a new kind is one class here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from orchestrator.plan import LLMTrialPlan, TrialPlan, llm_trial_plans, trial_plan
from orchestrator.spec import DatasetEntry, Resources, SpecError, SweepSpec
from trainables.llm.methods import LLMMethodConfig
from trainables.methods.registry import MethodConfig
from trainables.stage import DataConfig

if TYPE_CHECKING:  # the trial imports Ray, the tracking module MLflow: neither is needed to plan
    from orchestrator.tracking import PlannedRun
    from orchestrator.trial import TrialSettings
    from trainables.store import StageStore


class ChainKind:
    """A chain of generations trained from the sweep's data (teacher, then students)."""

    name: ClassVar[str] = "chain"
    trains: ClassVar[bool] = True  # tokenises its data, hands weights from generation to generation

    def check(self, method: MethodConfig, where: str, spec_seeds: tuple[int, ...],
              datasets: tuple[DatasetEntry, ...]) -> None:
        """The row's own training settings, over each dataset's, are valid."""
        for d in datasets:
            try:
                method.train_config(d.train).validate()
            except ValueError as exc:
                raise SpecError(f"{where}.train: {exc} (with dataset {d.name})") from None

    def plans(self, spec: SweepSpec, entry: DatasetEntry, method: MethodConfig, data: DataConfig) -> list[TrialPlan]:
        return [trial_plan(spec, entry, method, seed, data) for seed in spec.seeds]

    def gpus(self, resources: Resources) -> float:
        return resources.gpus_per_trial

    def gpu_shortage(self, resources: Resources, gpus: float, cluster: bool) -> str | None:
        """Why no trial of this kind could start on a Ray instance with `gpus` GPUs, or None."""
        if resources.gpus_per_trial <= gpus:
            return None
        fix = ("add GPU nodes, or set resources.gpus_per_trial: 0 to train on CPUs" if cluster else
               "set resources.gpus_per_trial: 0 to train on the CPU (or --num-gpus N when Ray does not see "
               "this machine's GPUs)")
        return (f"resources.gpus_per_trial is {resources.gpus_per_trial:g} but the Ray instance has "
                f"{gpus:g} GPU(s), so no trial could start; {fix}")

    def summary(self, plan: TrialPlan) -> dict:
        out = {"model": plan.stages[0].data.model, "train_overrides": dict(plan.method.train)}
        if plan.method.teacher.kind == "lcl":  # what each anchor is contrasted with (docs/method.md, LCL)
            out["lcl_second_view"] = plan.method.teacher.lcl_second_view
        return out

    def planned_run(self, plan: TrialPlan, spec_name: str) -> PlannedRun:
        """The trial's MLflow run as the driver creates it: tags to filter and group by, params."""
        from orchestrator.tracking import PlannedRun

        m, first = plan.method, plan.stages[0]
        tags = {"seed": str(plan.seed), "dataset": plan.dataset, "method": m.name,
                "generations": str(len(plan.stages)), "emocal.ece": "ts" if m.reports_scaled_ece else "raw",
                "emocal.report_generation": m.report_generation}
        params = {
            "seed": plan.seed, "dataset": plan.dataset, "method": m.name,
            "teacher": m.teacher.kind, "distill": m.distill.kind,
            "generations": len(plan.stages), "scale_student": m.distill.scale_student,
            "post_hoc_ts": m.post_hoc_ts, "model": first.data.model, "max_length": first.data.max_length,
            "epochs": first.train.epochs, "batch_size": first.train.batch_size, "lr": first.train.lr,
            "select": first.train.select, "group_by_length": first.train.group_by_length,
            "ood_percents": ",".join(f"{p:g}" for p in first.ood.percents) if first.ood else "",
            "spec": spec_name, "n_bins": first.n_bins,
        }
        if m.teacher.kind == "lcl":
            params["lcl_second_view"] = m.teacher.lcl_second_view
        return PlannedRun(plan.key, plan.fingerprint, tags, params)

    def run(self, plan: TrialPlan, store: StageStore, settings: TrialSettings) -> None:
        from orchestrator.trial import run_chain_trial

        run_chain_trial(plan, store, settings)


class LLMKind:
    """A prompted instruction-tuned LLM: one stage per prompt, nothing trained."""

    name: ClassVar[str] = "llm"
    trains: ClassVar[bool] = False

    def check(self, method: LLMMethodConfig, where: str, spec_seeds: tuple[int, ...],
              datasets: tuple[DatasetEntry, ...]) -> None:
        """One seed per few-shot prompt."""
        if method.prompts > len(spec_seeds):
            raise SpecError(f"{where}: {method.name} has {method.prompts} few-shot prompts, one per seed, but the "
                            f"spec has {len(spec_seeds)} seed(s); add seeds or set prompts: {len(spec_seeds)} in a "
                            "method mapping")

    def plans(self, spec: SweepSpec, entry: DatasetEntry, method: LLMMethodConfig,
              data: DataConfig) -> list[LLMTrialPlan]:
        return llm_trial_plans(spec, entry, method, data)

    def gpus(self, resources: Resources) -> float:
        return resources.gpus_per_llm_trial  # its own share: an 8-9B LLM wants a whole card

    def gpu_shortage(self, resources: Resources, gpus: float, cluster: bool) -> str | None:
        if resources.gpus_per_llm_trial <= gpus:
            return None
        return (f"resources.gpus_per_llm_trial is {resources.gpus_per_llm_trial:g} (an 8-9B LLM wants a whole GPU) "
                f"but the Ray instance has {gpus:g} GPU(s), so no LLM trial could start; add a GPU, or set "
                "resources.gpus_per_llm_trial: 0 to generate on the CPU (only for tiny models)")

    def summary(self, plan: LLMTrialPlan) -> dict:
        out = {"model": plan.method.model, "shots_per_class": plan.method.shots_per_class}
        if plan.method.shots_per_class:
            out["examples_from"] = plan.method.examples_from
        return out

    def planned_run(self, plan: LLMTrialPlan, spec_name: str) -> PlannedRun:
        from orchestrator.tracking import KIND_TAG, PlannedRun

        m, stage = plan.method, plan.stages[0]
        tags = {"seed": str(plan.seed), "dataset": plan.dataset, "method": m.name, "generations": "1",
                "emocal.ece": "raw", "emocal.report_generation": "best", KIND_TAG: LLMTrialPlan.kind}
        params = {"seed": plan.seed, "dataset": plan.dataset, "method": m.name, "model": m.model,
                  "shots_per_class": m.shots_per_class, "prompts": m.prompts, "max_new_tokens": m.max_new_tokens,
                  "batch_size": m.batch_size, "examples_from": m.examples_from,
                  "max_eval": stage.data.max_eval or "", "spec": spec_name,
                  "n_bins": stage.n_bins}
        return PlannedRun(plan.key, plan.fingerprint, tags, params)

    def run(self, plan: LLMTrialPlan, store: StageStore, settings: TrialSettings) -> None:
        from orchestrator.trial import run_llm_trial

        run_llm_trial(plan, store, settings)


KINDS: dict[str, ChainKind | LLMKind] = {k.name: k for k in (ChainKind(), LLMKind())}


def kind_of(thing: MethodConfig | LLMMethodConfig | TrialPlan | LLMTrialPlan) -> ChainKind | LLMKind:
    """The kind of a method config, or of a trial plan (its method's)."""
    return KINDS[getattr(thing, "method", thing).kind]
