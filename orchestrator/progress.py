"""A sweep's progress with an end in sight: stages done of stages planned, and the expected finish (issue 25).

The expected finish comes from the cost estimate (orchestrator/cost.py), corrected by the stages
finished so far in this sweep: their measured seconds (result.json "seconds", plus the per-stage
task overhead of the coefficients) over their estimated ones scale what is left. Without
coefficients for this machine the rate of this sweep's own finished stages gives the finish.
Each trial reports `stages_done`, `stages_planned` and `eta_s` with its generations (Tune's
table, the Ray dashboard), and the driver prints a progress line when a stage has finished.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ray import tune

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressPlan:
    """What every progress reading needs, fixed at the sweep's start; rides with the trials' settings.

    Attributes:
        stages: (store folder, key) of each stage the sweep stores (per trial with --no-reuse).
        estimated_s: stage key -> its estimated seconds (empty: no coefficients for this machine).
        wall_s: the estimated seconds of the trials from start to end (None: no estimate).
        stage_overhead_s: what a stage costs beyond its result.json seconds (task start, store write).
        started: when the trials started (time.time()).
        done_at_start: how many stages the store held already then.
    """

    stages: tuple[tuple[str, str], ...]
    estimated_s: Mapping[str, float] = field(default_factory=dict)
    wall_s: float | None = None
    stage_overhead_s: float = 0.0
    started: float = 0.0
    done_at_start: int = 0


def _done(plan: ProgressPlan) -> list[tuple[str, str]]:
    return [(root, key) for root, key in plan.stages if (Path(root) / key / "result.json").is_file()]


def _measured_s(root: str, key: str) -> float | None:
    try:
        seconds = json.loads((Path(root) / key / "result.json").read_text()).get("seconds")
    except (OSError, ValueError):
        return None
    return sum(seconds.values()) if seconds else None


@dataclass(frozen=True)
class Reading:
    """One look at the store: stages done, planned, and the expected finish (None: not yet known)."""

    done: int
    planned: int
    finish: float | None  # time.time() of the expected end of the trials
    factor: float | None  # measured / estimated seconds of this sweep's finished stages
    estimated: bool = False  # the finish comes from the cost estimate (else from the sweep's own pace)

    def metrics(self, now: float) -> dict:
        """What a trial reports to Tune with its generation."""
        return {"stages_done": self.done, "stages_planned": self.planned,
                "eta_s": round(max(0.0, self.finish - now), 1) if self.finish is not None else -1.0}

    def line(self, now: float) -> str:
        """The driver's progress line."""
        text = f"progress: {self.done} of {self.planned} stages done"
        if self.finish is None:
            return text + "; expected finish: after the first stage of this sweep"
        left = max(0.0, self.finish - now)
        when = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(self.finish))
        if self.factor:
            how = f"estimate x{self.factor:.2f} from the stages measured so far"
        elif self.estimated:
            how = "the cost estimate; corrected as stages finish"
        else:
            how = "from this sweep's own pace (no cost coefficients for this machine)"
        return text + f"; expected finish {when}, in {_duration(left)} ({how})"


def _duration(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min"


def read(plan: ProgressPlan, now: float | None = None) -> Reading:
    """Stages done of planned, and the expected finish: the estimate scaled by measured/estimated of
    the stages finished since the start, or this sweep's own pace without an estimate."""
    now = time.time() if now is None else now
    done = _done(plan)
    fresh = len(done) - plan.done_at_start
    planned = len(plan.stages)
    if plan.estimated_s and plan.wall_s:
        pairs = []
        for root, key in done:  # the stages finished since the start, measured against their estimate
            measured = _measured_s(root, key)
            if measured is not None and key in plan.estimated_s and \
                    (Path(root) / key / "result.json").stat().st_mtime >= plan.started:
                pairs.append((measured + plan.stage_overhead_s, plan.estimated_s[key]))
        factor = sum(m for m, _ in pairs) / sum(e for _, e in pairs) if pairs and sum(e for _, e in pairs) else 1.0
        total = sum(plan.estimated_s.values())
        finished = {key for _, key in done}
        left = sum(s for key, s in plan.estimated_s.items() if key not in finished)
        finish = now + plan.wall_s * factor * (left / total if total else 0.0)
        return Reading(len(done), planned, finish, factor if pairs else None, estimated=True)
    if fresh <= 0:
        return Reading(len(done), planned, None, None)
    pace = (now - plan.started) / fresh  # seconds of wall per stage, this sweep's own
    return Reading(len(done), planned, now + pace * (planned - len(done)), None)


def progress_plan(trials, store_root: Path, reuse: bool, estimate=None, started: float | None = None) -> ProgressPlan:
    """The sweep's stages and, with an estimate (cost.Estimate), what each is expected to take."""
    from orchestrator.kinds import kind_of
    from orchestrator.trial import trial_store_root

    stages: dict[tuple[str, str], None] = {}
    for t in trials:
        root = str(trial_store_root(store_root, reuse, t.key))
        for s in t.all_stages:
            stages[(root, s.key())] = None
    priced = estimate is not None and estimate.wall_s is not None and all(
        key in estimate.stage_seconds for t in trials if kind_of(t).trains for key in (s.key() for s in t.all_stages))
    overhead = estimate.coefficients.stage_overhead_s if priced and estimate.coefficients.stage_overhead_s else 0.0
    plan = ProgressPlan(tuple(stages), dict(estimate.stage_seconds) if priced else {},
                        (estimate.wall_s - (estimate.coefficients.sweep_overhead_s or 0.0)) if priced else None,
                        overhead, time.time() if started is None else started)
    return ProgressPlan(plan.stages, plan.estimated_s, plan.wall_s, plan.stage_overhead_s, plan.started,
                        len(_done(plan)))


def progress_metrics(plan: ProgressPlan | None) -> dict:
    """A trial's report's progress fields (none without a plan; a store that cannot be read gives none)."""
    if plan is None:
        return {}
    try:
        return read(plan).metrics(time.time())
    except OSError as exc:
        _logger.warning("progress: could not read the stage store: %s", exc)
        return {}


class ProgressLine(tune.Callback):
    """Prints the progress line in the driver each time the store holds one more finished stage."""

    def __init__(self, plan: ProgressPlan):
        self.plan = plan
        self._last = -1

    def on_trial_result(self, iteration, trials, trial, result, **info):
        try:
            reading = read(self.plan)
        except OSError as exc:  # a progress line must never stop a sweep
            _logger.warning("progress: could not read the stage store: %s", exc)
            return
        if reading.done != self._last:
            self._last = reading.done
            print(reading.line(time.time()), flush=True)


def sweep_progress(trials, store_root: Path, reuse: bool, keep_all: bool, resources, cpus: float,
                   gpus: float) -> ProgressPlan:
    """The progress plan of a sweep starting now on `cpus` and `gpus`, priced for this machine's
    hardware kind where the coefficients know it (else paced by its own finished stages)."""
    from orchestrator import cost

    estimate = None
    try:
        estimate = cost.estimate(trials, resources, cost.local_hardware(resources.gpus_per_trial),
                                 cost.load_coefficients(), cpus, gpus, keep_all)
    except (cost.CostError, OSError, ValueError) as exc:
        _logger.warning("progress: no cost estimate (%s); the expected finish follows the sweep's own pace", exc)
    plan = progress_plan(trials, store_root, reuse, estimate)
    print(read(plan).line(time.time()), flush=True)  # the expected finish as the trials start
    return plan
