"""A sweep's numbers as its MLflow store holds them: typed rows, the reported generation g*, seed statistics.

The report, the figures and the claims all read a sweep through this module, so they see the
same runs, the same g* and the same mean ± std (docs/method.md, Reporting):

- `collect` reads the experiment's current runs, one `Generation` per (run, logged generation);
  runs of a changed plan or of trials no longer in the spec are tagged superseded by the sweep
  (orchestrator/tracking.py) and only counted as skipped.
- `reported_generation` is the paper's rule: g* is the generation with the best seed-mean ID
  validation macro F1 among those every seed has finished (ties: the earliest; the last for
  presets that report their last generation). `reported_rows` gives the rows at g*, or with
  `PER_SEED` each seed's own best generation (a pick no column of the paper's matches).
- `summarise` and `per_generation` give every cell as `MeanStd` over seeds (sample std, NaN for
  one seed); the ID ECE is the scaled one for CSD-family and "+ TS" methods, raw otherwise.

Nothing here renders: orchestrator/report.py lays the numbers out as the paper's tables.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from orchestrator.tracking import CURRENT, KIND_TAG, STATUS_TAG

__all__ = [
    "CELLS", "CHAIN", "ECE_TAG", "GENERATION_CELLS", "ID_METRICS", "LLM", "LLM_COUNTS", "OOD_BASE", "PER_SEED",
    "PICK_TAG", "SEED_MEAN",
    "Generation", "GenerationResult", "MeanStd", "MethodResult", "Trials",
    "collect", "download_artifact", "group", "logged_percents", "mean_std", "per_generation", "reported_generation",
    "reported_generations", "reported_rows", "summarise",
]

ECE_TAG, PICK_TAG = "emocal.ece", "emocal.report_generation"  # set by the sweep on each trial's run
ID_METRICS = ("val_macro_f1", "test_macro_f1", "test_weighted_f1", "test_ece", "test_ece_ts")
OOD_BASE = ("ood_macro_f1", "ood_weighted_f1", "ood_ece")
# summed over a row's prompts (trainables/llm/score.py and stage.py, cut_counts)
LLM_COUNTS = ("test_unusable", "test_answers", "ood_unusable", "ood_answers", "test_bad_confidence",
              "ood_bad_confidence", "test_cut", "test_cut_no_answer", "ood_cut", "ood_cut_no_answer")
CHAIN, LLM = "chain", "llm"  # a run's kind (its KIND_TAG; absent means a chain's)
SEED_MEAN, PER_SEED = "seed-mean", "per-seed"
# summary cell -> the row's metric (None: the ID ECE, raw or scaled as the method is reported)
CELLS: dict[str, str | None] = {
    "id_macro_f1": "test_macro_f1", "id_weighted_f1": "test_weighted_f1", "id_ece": None,
    "val_macro_f1": "val_macro_f1",
    "ood_ft_macro_f1": "ft_macro_f1", "ood_ft_weighted_f1": "ft_weighted_f1", "ood_ft_ece": "ft_ece",
    "ood_noft_macro_f1": "ood_macro_f1", "ood_noft_weighted_f1": "ood_weighted_f1", "ood_noft_ece": "ood_ece"}
GENERATION_CELLS = ("id_macro_f1", "id_ece", "val_macro_f1", "ood_ft_macro_f1", "ood_ft_ece")  # Tables 11 and 12


class MeanStd(NamedTuple):
    """Mean and sample std over seeds; std is NaN for one seed, both for none."""

    mean: float
    std: float


@dataclass(frozen=True)
class Generation:
    """One logged generation of one current trial run.

    `metrics` holds what MLflow logged at this generation's step, plus `ft_macro_f1`,
    `ft_weighted_f1` and `ft_ece`: the OOD fine-tuning metrics at `ood_percent` (NaN where the
    run has none at it).
    """

    trial: str
    seed: int
    dataset: str
    method: str
    generation: int
    kind: str = CHAIN
    ece_kind: str = "raw"  # "ts": the method is reported after temperature scaling
    pick: str = "best"  # "last": the preset reports its last generation
    ood_percent: float | None = None
    encoder: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)

    def value(self, key: str | None) -> float:
        """A metric, NaN where none was logged; `None` is the ID test ECE as the method is reported."""
        if key is None:
            key = "test_ece_ts" if self.ece_kind == "ts" else "test_ece"
        v = self.metrics.get(key)
        return math.nan if v is None else float(v)


Trials = dict[str, dict[int, Generation]]  # one (dataset, method): trial -> generation -> row


@dataclass(frozen=True)
class MethodResult:
    """One (dataset, method) at its reported generation(s): the cells of Tables 1 and 2."""

    dataset: str
    method: str
    encoder: str
    seeds: int
    generation: str  # g* ("3"), or each seed's with PER_SEED ("per seed 2,3,2")
    generations_logged: int
    pick: str
    cells: Mapping[str, MeanStd]  # every name of CELLS
    ood_percent: float | None
    kind: str
    counts: Mapping[str, int] = field(default_factory=dict)  # an LLM row's LLM_COUNTS; empty for a chain's


@dataclass(frozen=True)
class GenerationResult:
    """One (dataset, method, generation): a cell of Tables 11 and 12."""

    dataset: str
    method: str
    generation: int
    seeds: int
    reported: bool  # this is g*
    cells: Mapping[str, MeanStd]  # every name of GENERATION_CELLS


def _histories(client, run_id: str, names: Iterable[str]) -> dict[int, dict[str, float]]:
    by_gen: dict[int, dict[str, float]] = defaultdict(dict)
    for name in names:
        for m in client.get_metric_history(run_id, name):
            by_gen[m.step][name] = m.value
    return by_gen


def _percents(metric_names: Iterable[str]) -> list[float]:
    """The OOD fine-tuning percentages a run logged (`ood_ft3_macro_f1` -> 3.0)."""
    return sorted(float(k[len("ood_ft"):-len("_macro_f1")]) for k in metric_names
                  if k.startswith("ood_ft") and k.endswith("_macro_f1"))


def collect(uri: str, experiment: str, ood_percent: float | None = None) -> tuple[list[Generation], int]:
    """One row per (current trial run, logged generation), and how many runs were skipped as not current.

    Args:
        ood_percent: The OOD fine-tuning percentage whose metrics become `ft_*`; by default 3
            where a run has it, else the middle of the run's percentages.
    """
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"no MLflow experiment {experiment!r} at {uri}")
    rows, skipped = [], 0
    for run in client.search_runs([exp.experiment_id], max_results=50000):  # past MLflow's default page of 1,000
        tags = run.data.tags
        if "method" not in tags:
            continue
        if tags.get(STATUS_TAG) != CURRENT:  # superseded, or made by an emocal without plan fingerprints
            skipped += 1
            continue
        percents = _percents(run.data.metrics)
        p = ood_percent if ood_percent is not None else (3.0 if 3.0 in percents else (percents[len(percents) // 2] if percents else None))
        ft = tuple(f"ood_ft{p:g}_{m}" for m in ("macro_f1", "weighted_f1", "ece")) if p is not None else ()
        kind = tags.get(KIND_TAG, CHAIN)
        names = ID_METRICS + OOD_BASE + (LLM_COUNTS if kind == LLM else ft)
        for gen, metrics in sorted(_histories(client, run.info.run_id, names).items()):
            for src, dst in zip(ft, ("ft_macro_f1", "ft_weighted_f1", "ft_ece")):
                metrics[dst] = metrics.get(src, math.nan)
            rows.append(Generation(trial=run.info.run_name, seed=int(tags.get("seed", -1)), dataset=tags["dataset"],
                                   method=tags["method"], generation=gen, kind=kind, ece_kind=tags.get(ECE_TAG, "raw"),
                                   pick=tags.get(PICK_TAG, "best"), ood_percent=p,
                                   encoder=run.data.params.get("model", ""), metrics=metrics))
    return rows, skipped


def logged_percents(uri: str, experiment: str) -> set[float]:
    """Every OOD fine-tuning percentage some current run of the experiment logged."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    found: set[float] = set()
    for run in client.search_runs([exp.experiment_id], filter_string=f"tags.`{STATUS_TAG}` = '{CURRENT}'"):
        found |= set(_percents(run.data.metrics))
    return found


def download_artifact(uri: str, experiment: str, row: Generation, name: str, dst: str | Path) -> Path:
    """The current run's artifact `gen<g>/<name>` of `row`'s generation, downloaded into `dst`."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    run = client.search_runs([exp.experiment_id], filter_string=(
        f"attributes.run_name = '{row.trial}' and tags.`{STATUS_TAG}` = '{CURRENT}'"))[0]
    return Path(client.download_artifacts(run.info.run_id, f"gen{row.generation}/{name}", str(dst)))


def group(rows: Iterable[Generation]) -> dict[tuple[str, str], Trials]:
    """(dataset, method) -> trial -> generation -> row."""
    out: dict[tuple[str, str], Trials] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        out[(r.dataset, r.method)][r.trial][r.generation] = r
    return out


def mean_std(values: Iterable[float]) -> MeanStd:
    """Mean and sample std (ddof 1) over seeds, NaNs left out; std is NaN for one seed."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return MeanStd(math.nan, math.nan)
    return MeanStd(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan)


def reported_generation(trials: Trials) -> int:
    """g* of one (dataset, method): the generation with the best seed-mean ID validation macro F1
    (ties: the earliest), among the generations every seed has finished; the last one for
    presets that report their last generation."""
    common = sorted(set.intersection(*(set(gens) for gens in trials.values())))
    if not common:
        return min(min(gens) for gens in trials.values())
    first = next(iter(trials.values()))[common[0]]
    if first.pick == "last":
        return common[-1]
    means = {g: mean_std(gens[g].value("val_macro_f1") for gens in trials.values()).mean for g in common}
    return max(common, key=lambda g: (-math.inf if math.isnan(means[g]) else means[g], -g))


def reported_generations(rows: Iterable[Generation]) -> dict[tuple[str, str], int]:
    """(dataset, method) -> g*."""
    return {key: reported_generation(trials) for key, trials in group(rows).items()}


def reported_rows(trials: Trials, pick: str = SEED_MEAN) -> list[Generation]:
    """The rows a (dataset, method) is reported at: each seed's at g* (seeds in the order read), or
    with PER_SEED each seed's own best generation by validation macro F1 (ties: the earliest; a
    last-generation preset's last), in seed order."""
    if pick == SEED_MEAN:
        g = reported_generation(trials)
        return [gens[g] for gens in trials.values() if g in gens]
    if pick != PER_SEED:
        raise ValueError(f"pick must be {SEED_MEAN} or {PER_SEED}, not {pick!r}")
    chosen = []
    for gens in trials.values():
        ordered = [gens[k] for k in sorted(gens)]
        chosen.append(ordered[-1] if ordered[0].pick == "last" else
                      max(ordered, key=lambda r: (r.value("val_macro_f1"), -r.generation)))
    return sorted(chosen, key=lambda r: r.seed)


def summarise(rows: Sequence[Generation], pick: str = SEED_MEAN) -> list[MethodResult]:
    """One result per (dataset, method), sorted: its reported generation(s) and mean ± std of every cell."""
    if pick not in (SEED_MEAN, PER_SEED):
        raise ValueError(f"pick must be {SEED_MEAN} or {PER_SEED}, not {pick!r}")
    out = []
    for (dataset, method), trials in sorted(group(rows).items()):
        chosen = reported_rows(trials, pick)
        generation = (str(chosen[0].generation) if pick == SEED_MEAN else
                      "per seed " + ",".join(str(r.generation) for r in chosen))
        first = chosen[0]
        out.append(MethodResult(
            dataset=dataset, method=method, encoder=first.encoder, seeds=len(chosen), generation=generation,
            generations_logged=max(max(gens) for gens in trials.values()), pick=pick,
            cells={name: mean_std(r.value(key) for r in chosen) for name, key in CELLS.items()},
            ood_percent=first.ood_percent, kind=first.kind,
            counts={name: int(sum(r.metrics.get(name, 0) for r in chosen)) for name in LLM_COUNTS}
            if first.kind == LLM else {}))
    return out


def per_generation(rows: Sequence[Generation]) -> list[GenerationResult]:
    """Tables 11 and 12: mean ± std over seeds of every (dataset, method, generation), sorted."""
    out = []
    for (dataset, method), trials in sorted(group(rows).items()):
        g_star = reported_generation(trials)
        for g in sorted({g for gens in trials.values() for g in gens}):
            chosen = [gens[g] for gens in trials.values() if g in gens]
            out.append(GenerationResult(dataset=dataset, method=method, generation=g, seeds=len(chosen),
                                        reported=g == g_star,
                                        cells={name: mean_std(r.value(CELLS[name]) for r in chosen)
                                               for name in GENERATION_CELLS}))
    return out
