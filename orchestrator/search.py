"""A spec's `search:` block -> a frozen SearchSpec, checked before Ray starts (docs/guide.md, Searching a method's options).

A search tunes one method of the spec on its one dataset: each Tune sample is that method with
some options changed, named by their spec path (`train.lr`, `teacher.alpha`, `distill.kind`,
`generations`). Every bound and every choice is applied to the method and checked by the
method's and the training settings' own rules here, so a range the option refuses, a path that
names no option or an objective on a metric no stage writes fails in a second, naming the key.

The objective is read on validation data only; a test metric is refused (the test split never
influences a choice). The seed rule: every sample runs on the spec's first seed, and the
chosen configuration is then trained on every seed of the spec (the confirm step), because
a search that ran each sample on n seeds would cost n times as much to rank configurations
that the first seed already ranks (docs/design.md, Searches).
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, fields

from trainables.methods.registry import DistillConfig, MethodConfig, MixupConfig
from trainables.train import TrainConfig

ALGORITHMS = ("optuna", "random", "grid")  # Optuna's TPE, Tune's random and grid search (BasicVariantGenerator)
SCHEDULERS = ("asha", "none")
DOMAINS = ("uniform", "loguniform", "randint", "choice")
# what a stage writes about its validation split (trainables/stage.py, _metrics), and the NLL that
# the search reads off the stored validation logits (VAL_DERIVED)
VAL_METRICS = ("val_macro_f1", "val_weighted_f1", "val_accuracy", "val_ece", "val_ece_ts", "val_ece15",
               "val_ece_equal_mass", "val_ece_classwise", "val_nll", "val_nll_ts")
VAL_DERIVED = ("val_nll", "val_nll_ts")
MAXIMISED = ("val_macro_f1", "val_weighted_f1", "val_accuracy")
_KEYS = ("method", "params", "algorithm", "scheduler", "num_samples", "max_concurrent", "objective", "seed")
_GROUPS = {"teacher": MixupConfig, "distill": DistillConfig, "train": TrainConfig}
# a sample that breaks the F1 constraint ranks below every sample that keeps it: its objective is
# moved by more than any ECE, NLL or F1 in percent can differ
INFEASIBLE_PENALTY = 1000.0


class SearchError(ValueError):
    """A `search:` block that cannot run; the message names the key and the fix."""


@dataclass(frozen=True)
class SearchParam:
    """One searched option: its spec path, a Tune domain and its bounds or choices.

    randint's bounds are both included (Tune's upper bound is not: orchestrator/tuning.py adds 1).
    """

    path: str  # "teacher.alpha", "train.lr", "distill.scale_student", "generations"
    domain: str  # uniform | loguniform | randint | choice
    values: tuple  # (low, high) or the choices


@dataclass(frozen=True)
class Objective:
    """What a sample is ranked by: a validation metric at the sample's reported generation g*
    (the paper's rule: best validation macro F1), optionally under an F1 constraint."""

    metric: str = "val_ece_ts"  # a validation metric: F1, accuracy, ECE or NLL (`_ts`: after the stage's own T)
    mode: str = "min"  # min or max; the default is max for F1 and accuracy, min otherwise
    # validation macro F1 at most this many points below the CE baseline's (the method's CE
    # teacher at the spec's own settings, on the search seed); None: no constraint
    max_f1_drop: float | None = None


@dataclass(frozen=True)
class SchedulerSpec:
    """ASHA over generations (a chain is stopped at a generation boundary), or none."""

    kind: str = "asha"  # asha or none
    grace_period: int = 1  # generations every sample trains before it can be stopped
    reduction_factor: int = 2  # ASHA keeps the best 1/reduction_factor at each rung


@dataclass(frozen=True)
class SearchSpec:
    method: str  # the spec's method whose options are searched
    params: tuple[SearchParam, ...]
    objective: Objective
    scheduler: SchedulerSpec
    algorithm: str = "optuna"
    num_samples: int = 8  # for grid: how often the whole grid runs (1: each point once)
    max_concurrent: int = 2  # samples at once; TPE learns from finished samples, so fewer is wiser
    seed: int = 0  # the searcher's random seed (the spec's first seed unless given)

    @property
    def max_generations(self) -> int | None:
        """The most generations a sample can have, if `generations` is searched."""
        for p in self.params:
            if p.path == "generations":
                return int(max(p.values))
        return None


def _fail(where: str, msg: str) -> typing.NoReturn:
    raise SearchError(f"{where}: {msg}")


def search_paths() -> list[str]:
    """Every option a search may name: `generations` and each teacher, distill and train field."""
    return _known_paths()


def _known_paths() -> list[str]:
    return ["generations"] + [f"{g}.{f.name}" for g, cls in _GROUPS.items() for f in fields(cls)
                              if not (g == "distill" and f.name == "generations")]


def _hint(path: str):
    if path == "generations":
        return int
    group, name = path.split(".", 1)
    return typing.get_type_hints(_GROUPS[group])[name]


def apply_sample(method: MethodConfig, values: dict[str, object]) -> MethodConfig:
    """`method` with the sampled options set (paths as in SearchParam.path); raises ValueError
    when the result is refused by the method's or the training settings' rules."""
    teacher, distill, train = {}, {}, dict(method.train)
    for path, value in values.items():
        value = _coerce(value, _hint(path), path)
        if path == "generations":
            distill["generations"] = value
            continue
        group, name = path.split(".", 1)
        {"teacher": teacher, "distill": distill, "train": train}[group][name] = value
    return dataclasses.replace(method, teacher=dataclasses.replace(method.teacher, **teacher),
                               distill=dataclasses.replace(method.distill, **distill),
                               train=tuple(sorted(train.items())))


def _coerce(value, hint, path: str):
    """A sampled value as its option's type: Tune's samplers may give numpy numbers."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if not isinstance(value, (bool, int)) or isinstance(value, float):
            raise ValueError(f"{path} takes true or false, got {value!r}")
        return bool(value)
    if hint is int:
        if isinstance(value, bool) or float(value) != int(value):
            raise ValueError(f"{path} takes an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise ValueError(f"{path} takes a number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise ValueError(f"{path} takes a string, got {value!r}")
    return value


def check_sample(method: MethodConfig, values: dict[str, object], base_train: TrainConfig) -> None:
    """Raise ValueError if the method with these options could not run."""
    sampled = apply_sample(method, values)
    sampled.validate()
    sampled.train_config(base_train).validate()


def _param(path, raw, where: str, method: MethodConfig, base_train: TrainConfig, algorithm: str) -> SearchParam:
    known = _known_paths()
    if not isinstance(path, str) or path not in known:
        close = difflib.get_close_matches(str(path), known, n=1)
        _fail(where, "unknown parameter path" + (f"; did you mean {close[0]!r}?" if close else
                                                f"; known paths: {', '.join(known)}"))
    group = path.split(".", 1)[0]
    if group == "teacher" and path != "teacher.kind" and method.teacher.kind == "none":
        _fail(where, f"method {method.name!r} trains a plain-CE teacher, which no teacher option but kind "
                     "changes; search a MixUp method's teacher (e.g. sim_mixup_csd) or teacher.kind")
    if (group == "distill" and path != "distill.kind" or path == "generations") and method.distill.kind == "none":
        _fail(where, f"method {method.name!r} trains no students, so {path} changes nothing; search a method "
                     "with distillation (sd, csd) or distill.kind")
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in DOMAINS:
        _fail(where, f"expected one of {', '.join(f'{{{d}: [...]}}' for d in DOMAINS)}, got {raw!r}")
    domain, values = next(iter(raw.items()))
    if not isinstance(values, list) or not values:
        _fail(f"{where}.{domain}", f"expected a list, got {values!r}")
    hint = _hint(path)
    if domain == "choice":
        if len(set(map(repr, values))) != len(values):
            _fail(f"{where}.choice", "a choice is listed twice; list each once")
    else:
        if algorithm == "grid":
            _fail(where, "a grid search takes only choice: [...] parameters (every point is run)")
        if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            _fail(f"{where}.{domain}", f"expected [low, high] numbers, got {values!r}")
        low, high = values
        if not low < high:
            _fail(f"{where}.{domain}", f"low {low} must be below high {high}")
        if domain in ("uniform", "loguniform") and hint is not float and typing.get_args(hint) != (float, type(None)):
            _fail(where, f"{path} is an integer option: use randint: [low, high] or choice: [...]")
        if domain == "randint" and hint is not int and typing.get_args(hint) != (int, type(None)):
            _fail(where, f"{path} is not an integer option: use uniform, loguniform or choice")
        if domain == "loguniform" and low <= 0:
            _fail(f"{where}.loguniform", f"low must be > 0 for a log scale, got {low}")
    # every bound and choice must be a setting the option accepts (ranges of these options are
    # intervals or sets, so checking the ends checks the range)
    labels = ["choice"] * len(values) if domain == "choice" else ["lower bound", "upper bound"]
    for value, label in zip(values, labels):
        try:
            check_sample(method, {path: value}, base_train)
        except ValueError as exc:
            _fail(f"{where}.{domain}", f"{value!r} ({label}) is refused: {exc}")
    return SearchParam(path=path, domain=domain, values=tuple(values))


def _objective(raw, where: str) -> Objective:
    from orchestrator.spec import SpecError, build

    if not isinstance(raw, dict):
        _fail(where, "expected a mapping such as {metric: val_ece_ts, mode: min, max_f1_drop: 1.0}")
    metric = raw.get("metric", Objective.metric)
    if metric not in VAL_METRICS:
        why = (" (a choice is made on validation data only: the test and OOD splits never influence it)"
               if isinstance(metric, str) and metric.startswith(("test_", "ood_")) else "")
        close = difflib.get_close_matches(str(metric), VAL_METRICS, n=1)
        _fail(f"{where}.metric", f"unknown objective metric {metric!r}{why}; "
                                 + (f"did you mean {close[0]!r}? " if close else "")
                                 + f"known: {', '.join(VAL_METRICS)}")
    raw = {"mode": "max" if metric in MAXIMISED else "min", **raw}
    try:
        objective = build(Objective, raw, where)
    except SpecError as exc:
        raise SearchError(str(exc)) from None
    if objective.mode not in ("min", "max"):
        _fail(f"{where}.mode", f"use min or max, not {objective.mode!r}")
    if objective.max_f1_drop is not None and not (objective.max_f1_drop >= 0 and math.isfinite(objective.max_f1_drop)):
        _fail(f"{where}.max_f1_drop", f"points of validation macro F1, >= 0; got {objective.max_f1_drop}")
    return objective


def _scheduler(raw, where: str, max_generations: int) -> SchedulerSpec:
    from orchestrator.spec import SpecError, build

    if isinstance(raw, str):
        raw = {"kind": raw}
    try:
        sched = build(SchedulerSpec, raw, where)
    except SpecError as exc:
        raise SearchError(str(exc)) from None
    if sched.kind not in SCHEDULERS:
        _fail(f"{where}.kind", f"unknown scheduler {sched.kind!r}; use {' or '.join(SCHEDULERS)}")
    if sched.kind == "asha":
        if max_generations < 2:
            _fail(where, "ASHA stops a chain at a generation boundary, and this method has one generation; "
                         "use scheduler: none, or search a method with students")
        if not 1 <= sched.grace_period < max_generations:
            _fail(f"{where}.grace_period", f"must be in 1..{max_generations - 1} (generations before a stop)")
        if sched.reduction_factor < 2:
            _fail(f"{where}.reduction_factor", "must be >= 2")
    return sched


def parse_search(raw, methods: tuple, base_train: TrainConfig, first_seed: int) -> SearchSpec:
    """The `search:` block, checked against the spec's method and training settings."""
    where = "search"
    if not isinstance(raw, dict):
        _fail(where, "expected a mapping with params, algorithm, scheduler, num_samples and objective")
    unknown = set(raw) - set(_KEYS)
    for key in sorted(unknown):
        close = difflib.get_close_matches(str(key), _KEYS, n=1)
        _fail(f"{where}.{key}", "unknown key" + (f"; did you mean {close[0]!r}?" if close else
                                                  f"; known keys: {', '.join(_KEYS)}"))
    chains = [m for m in methods if m.kind == "chain"]
    if len(methods) != 1 or not chains:
        _fail("methods", "a search tunes one trained method: list exactly that one under methods "
                         f"(the spec lists {', '.join(m.name for m in methods)})")
    method = chains[0]
    name = raw.get("method", method.name)
    if name != method.name:
        _fail(f"{where}.method", f"{name!r} is not the spec's method; the spec's: {method.name}")
    algorithm = raw.get("algorithm", "optuna")
    if algorithm not in ALGORITHMS:
        _fail(f"{where}.algorithm", f"unknown search algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    params_raw = raw.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        _fail(f"{where}.params", "give the options to search by spec path, e.g. {teacher.alpha: {uniform: [0.5, 8]}}")
    params = tuple(_param(path, value, f"{where}.params.{path}", method, base_train, algorithm)
                   for path, value in params_raw.items())
    gens = max([method.generations] + [int(max(p.values)) for p in params if p.path == "generations"])
    num_samples = raw.get("num_samples", 1 if algorithm == "grid" else 8)
    max_concurrent = raw.get("max_concurrent", 2)
    seed = raw.get("seed", first_seed)
    for key, value, low in (("num_samples", num_samples, 1), ("max_concurrent", max_concurrent, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            _fail(f"{where}.{key}", f"expected an integer >= {low}, got {value!r}")
    return SearchSpec(method=method.name, params=params, objective=_objective(raw.get("objective", {}), f"{where}.objective"),
                      scheduler=_scheduler(raw.get("scheduler", "asha"), f"{where}.scheduler", gens),
                      algorithm=algorithm, num_samples=num_samples, max_concurrent=max_concurrent, seed=seed)


def reported_index(history: list[dict], pick: str = "best") -> int:
    """The index of g* among the generations so far: best validation macro F1, ties to the
    earliest (docs/method.md, Reporting), or the last for a method that reports its last."""
    if pick == "last":
        return len(history) - 1
    f1 = [h["val_macro_f1"] for h in history]
    return f1.index(max(f1))


def objective_value(history: list[dict], objective: Objective, baseline_f1: float | None,
                    pick: str = "best") -> dict:
    """What a sample reports to Tune after each generation: the objective at g* so far.

    `search_objective` is the metric at g*, moved by INFEASIBLE_PENALTY against the mode when
    g*'s validation macro F1 is more than `max_f1_drop` below the baseline's, so the searcher
    and ASHA rank every feasible sample above every infeasible one.
    """
    i = reported_index(history, pick)
    value = float(history[i][objective.metric])
    feasible = (objective.max_f1_drop is None or baseline_f1 is None
                or history[i]["val_macro_f1"] >= baseline_f1 - objective.max_f1_drop)
    moved = value if feasible else value + (INFEASIBLE_PENALTY if objective.mode == "min" else -INFEASIBLE_PENALTY)
    return {"search_objective": moved, "search_value": value, "search_feasible": int(feasible),
            "search_generation": i + 1}


def trade_off_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (validation macro F1, validation ECE) points no other point beats on both
    (higher F1 and lower ECE, one of them strictly): the trade-off front."""
    front = []
    for i, (f1, ece) in enumerate(points):
        beaten = any(f >= f1 and e <= ece and (f > f1 or e < ece) for j, (f, e) in enumerate(points) if j != i)
        if not beaten:
            front.append(i)
    return front
