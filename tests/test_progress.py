"""Progress with an end in sight (orchestrator/progress.py): stages done of planned, and the
expected finish from the estimate corrected by the stages measured so far."""
from __future__ import annotations

import json
import os

import pytest

from orchestrator.progress import ProgressPlan, progress_metrics, read


def finish_stage(store, key, seconds, mtime=None):
    (store / key).mkdir(parents=True)
    path = store / key / "result.json"
    path.write_text(json.dumps({"key": key, "seconds": {"setup": 0.0, "train": seconds, "evaluate": 0.0, "ood": 0.0}}))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_the_finish_is_the_estimate_scaled_by_measured_over_estimated(tmp_path):
    store = str(tmp_path)
    plan = ProgressPlan(((store, "a"), (store, "b")), {"a": 100.0, "b": 100.0}, wall_s=200.0, started=1000.0)
    first = read(plan, now=1000.0)
    assert (first.done, first.planned, first.finish) == (0, 2, 1200.0)
    assert "(the cost estimate; corrected as stages finish)" in first.line(1000.0)
    finish_stage(tmp_path, "a", 140.0)  # it took 140 + 10 s overhead against 100 estimated: x1.5
    plan = ProgressPlan(plan.stages, plan.estimated_s, plan.wall_s, stage_overhead_s=10.0, started=1000.0)
    later = read(plan, now=1300.0)
    assert later.factor == pytest.approx(1.5)
    assert later.finish == pytest.approx(1300.0 + 200.0 * 1.5 * 0.5)  # half the estimated work is left
    assert later.metrics(1300.0) == {"stages_done": 1, "stages_planned": 2, "eta_s": 150.0}
    assert "1 of 2 stages done" in later.line(1300.0) and "x1.50" in later.line(1300.0)


def test_a_stage_stored_before_the_sweep_is_no_measurement(tmp_path):
    finish_stage(tmp_path, "a", 1000.0, mtime=10.0)  # from an earlier sweep: says nothing of this one's pace
    plan = ProgressPlan(((str(tmp_path), "a"), (str(tmp_path), "b")), {"a": 100.0, "b": 100.0}, wall_s=200.0,
                        started=1000.0, done_at_start=1)
    reading = read(plan, now=1000.0)
    assert reading.factor is None and reading.finish == pytest.approx(1100.0)


def test_without_an_estimate_the_sweeps_own_pace_gives_the_finish(tmp_path):
    stages = tuple((str(tmp_path), k) for k in "abcd")
    plan = ProgressPlan(stages, started=900.0)
    assert read(plan, now=950.0).finish is None  # nothing finished yet: no pace
    assert "after the first stage" in read(plan, now=950.0).line(950.0)
    assert read(plan, now=950.0).metrics(950.0)["eta_s"] == -1.0
    finish_stage(tmp_path, "a", 5.0)
    assert read(plan, now=1000.0).finish == pytest.approx(1000.0 + 100.0 * 3)  # 100 s a stage, 3 left


def test_no_plan_reports_nothing():
    assert progress_metrics(None) == {}
