"""The `search:` block without Ray: bad input refused before anything starts, naming the key; the
objective's rule; the trade-off front; the confirm step's spec; ASHA's state round trip."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from orchestrator.search import INFEASIBLE_PENALTY, Objective, objective_value, reported_index, trade_off_front
from orchestrator.spec import SpecError, parse_spec

BASE = {
    "name": "s", "seeds": [0, 1], "generations": 3, "methods": ["sim_mixup_csd"], "datasets": ["isear"],
    "search": {"params": {"teacher.alpha": {"uniform": [0.5, 8.0]}, "distill.scale_student": {"choice": [False, True]}},
               "objective": {"metric": "val_ece_ts", "max_f1_drop": 1.0}},
}


def spec_with(**search):
    raw = copy.deepcopy(BASE)
    raw["search"].update(search)
    return raw


def refused(raw) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, check_data=False)
    return str(info.value)


def test_a_valid_search_parses_into_frozen_settings():
    spec = parse_spec(spec_with(), check_data=False)
    s = spec.search
    assert s.algorithm == "optuna" and s.scheduler.kind == "asha" and s.num_samples == 8 and s.seed == 0
    assert [(p.path, p.domain, p.values) for p in s.params] == [
        ("teacher.alpha", "uniform", (0.5, 8.0)), ("distill.scale_student", "choice", (False, True))]
    assert s.objective == Objective("val_ece_ts", "min", 1.0)
    with pytest.raises(AttributeError):
        s.num_samples = 3  # frozen


@pytest.mark.parametrize("params, expected", [
    ({"teacher.alhpa": {"uniform": [1, 2]}}, "search.params.teacher.alhpa: unknown parameter path; did you mean 'teacher.alpha'?"),
    ({"teacher.alpha": {"uniform": [0.0, 5.0]}}, "search.params.teacher.alpha.uniform: 0.0 (lower bound) is refused: "
                                                 "method 'sim_mixup_csd': teacher.alpha must be > 0"),
    ({"teacher.main_weight": {"uniform": [0.5, 1.5]}}, "1.5 (upper bound) is refused"),
    ({"teacher.layer": {"choice": ["features", "pooler"]}}, "'pooler' (choice) is refused: method 'sim_mixup_csd': "
                                                            "teacher.layer must be features or logits"),
    ({"train.lr": {"loguniform": [0, 1e-4]}}, "search.params.train.lr.loguniform: low must be > 0"),
    ({"train.epochs": {"uniform": [1, 3]}}, "train.epochs is an integer option: use randint"),
    ({"train.select": {"choice": ["val_macro_f1", "test_macro_f1"]}}, "'test_macro_f1' (choice) is refused"),
    ({"generations": {"randint": [1, 4]}}, "search.params.generations.randint: 1 (lower bound) is refused"),
    ({"teacher.alpha": {"uniform": [5, 1]}}, "low 5 must be below high 1"),
    ({"teacher.alpha": [1, 2]}, "search.params.teacher.alpha: expected one of {uniform: [...]}"),
])
def test_a_bad_parameter_is_refused_naming_its_path(params, expected):
    assert expected in refused(spec_with(params=params))


@pytest.mark.parametrize("objective, expected", [
    ({"metric": "test_ece"}, "search.objective.metric: unknown objective metric 'test_ece' (a choice is made on "
                             "validation data only"),
    ({"metric": "val_ece_tss"}, "did you mean 'val_ece_ts'?"),
    ({"metric": "val_nll", "mode": "lowest"}, "search.objective.mode: use min or max"),
    ({"metric": "val_nll", "max_f1_drop": -1}, "search.objective.max_f1_drop"),
    ({"metrc": "val_nll"}, "search.objective.metrc: unknown key; did you mean 'metric'?"),
])
def test_an_objective_on_an_unknown_or_test_metric_is_refused(objective, expected):
    assert expected in refused(spec_with(objective=objective))


def test_other_bad_search_blocks_are_refused_naming_the_key():
    assert "search.algoritm: unknown key; did you mean 'algorithm'?" in refused(spec_with(algoritm="optuna"))
    assert "search.algorithm: unknown search algorithm 'hyperopt'" in refused(spec_with(algorithm="hyperopt"))
    assert "a grid search takes only choice" in refused(spec_with(algorithm="grid"))
    assert "search.scheduler.kind: unknown scheduler 'pbt'" in refused(spec_with(scheduler="pbt"))
    assert "search.scheduler.grace_period: must be in 1..2" in refused(spec_with(scheduler={"grace_period": 3}))
    assert "search.num_samples: expected an integer >= 1" in refused(spec_with(num_samples=0))
    raw = spec_with()
    raw["datasets"] = ["isear", "goemotions"]
    assert "datasets: a search tunes a method on one dataset" in refused(raw)
    raw = spec_with()
    raw["methods"] = ["csd", "ce"]
    assert "methods: a search tunes one trained method" in refused(raw)
    raw = spec_with(params={"distill.scale_student": {"choice": [False, True]}})
    raw["methods"] = ["ce"]
    assert "trains no students, so distill.scale_student changes nothing" in refused(raw)
    raw = spec_with(params={"teacher.alpha": {"uniform": [1, 2]}})
    raw["methods"] = ["csd"]
    assert "trains a plain-CE teacher" in refused(raw)
    raw = spec_with(params={"train.lr": {"loguniform": [1e-5, 1e-4]}})
    raw["methods"] = ["ce"]
    assert "ASHA stops a chain at a generation boundary, and this method has one generation" in refused(raw)


def test_the_objective_is_read_at_g_star_and_an_infeasible_sample_ranks_last():
    history = [{"val_macro_f1": 60.0, "val_ece_ts": 5.0}, {"val_macro_f1": 62.0, "val_ece_ts": 7.0},
               {"val_macro_f1": 62.0, "val_ece_ts": 1.0}]
    assert reported_index(history) == 1 and reported_index(history, "last") == 2  # ties go to the earliest
    out = objective_value(history, Objective("val_ece_ts", "min", 1.0), baseline_f1=62.5)
    assert out == {"search_objective": 7.0, "search_value": 7.0, "search_feasible": 1, "search_generation": 2}
    out = objective_value(history, Objective("val_ece_ts", "min", 1.0), baseline_f1=63.5)  # 62 < 63.5 - 1
    assert out["search_feasible"] == 0 and out["search_objective"] == 7.0 + INFEASIBLE_PENALTY
    out = objective_value(history, Objective("val_macro_f1", "max", 1.0), baseline_f1=70.0)
    assert out["search_objective"] == 62.0 - INFEASIBLE_PENALTY
    assert objective_value(history[:1], Objective("val_ece_ts", "min", None), None)["search_generation"] == 1


def test_the_trade_off_front_is_the_points_no_other_beats_on_both():
    rng = np.random.default_rng(0)
    points = [tuple(p) for p in rng.integers(0, 6, size=(25, 2)).astype(float)]  # ties on purpose
    front = set(trade_off_front(points))
    for i, (f1, ece) in enumerate(points):
        dominated = any(f >= f1 and e <= ece and (f, e) != (f1, ece) for f, e in points)
        assert (i in front) == (not dominated), (i, points[i])
    assert front
    # a twin does not beat its twin; a point better on one and equal on the other does
    assert trade_off_front([(60.0, 5.0), (60.0, 5.0), (58.0, 3.0), (55.0, 6.0), (58.0, 4.0)]) == [0, 1, 2]


def test_the_nll_matches_a_brute_force_sum():
    from trainables.calibration import negative_log_likelihood

    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(40, 5)) * 3, rng.integers(0, 5, 40)
    for t in (1.0, 0.5, 2.5):
        brute = np.mean([np.log(np.exp(row / t).sum()) - row[y] / t for row, y in zip(logits, labels)])
        assert negative_log_likelihood(logits, labels, t) == pytest.approx(brute, rel=1e-12)


def test_the_confirm_spec_trains_the_chosen_configuration_under_the_samples_own_stage_keys(data_root):
    """The confirm step is an ordinary sweep spec; the chosen method's stages on the search seed are
    the sample's own keys, so confirming on one seed trains nothing new."""
    from orchestrator.plan import build_plan
    from orchestrator.tuning import Sample, confirm_raw, make_context

    spec = parse_spec(copy.deepcopy(BASE), data_root=str(data_root))
    context = make_context(spec)
    config = {"teacher.alpha": 2.5, "distill.scale_student": True}
    sample = Sample("t1", 1, config, (), (), (), "completed", {})
    confirm = parse_spec(confirm_raw(spec, sample), data_root=str(data_root))
    assert confirm.name == "s_confirm" and confirm.search is None and confirm.seeds == (0, 1)
    assert [m.name for m in confirm.methods] == ["ce", "sim_mixup_csd_best"]
    chosen = [t for t in build_plan(confirm) if t.method.name == "sim_mixup_csd_best"]
    assert [t.seed for t in chosen] == [0, 1]
    assert [s.key() for s in chosen[0].all_stages] == [s.key() for s in context.plan(config).all_stages]
    assert context.baseline.key() == [t for t in build_plan(confirm) if t.method.name == "ce"][0].stages[0].key()


@pytest.mark.slow  # imports Ray Tune's schedulers (no Ray started)
def test_the_scheduler_state_callback_round_trips_asha_rungs(tmp_path):
    from orchestrator.tuning import GenerationASHA, SchedulerState

    asha = GenerationASHA(tmp_path / "stops.json", metric="m", mode="min", max_t=3, grace_period=1,
                          reduction_factor=2)
    asha._brackets[0]._rungs[-1][1]["trial_a"] = -1.5
    state = pickle.loads(pickle.dumps(SchedulerState(asha).get_state()))
    fresh = GenerationASHA(tmp_path / "stops.json", metric="m", mode="min", max_t=3, grace_period=1,
                           reduction_factor=2)
    SchedulerState(fresh).set_state(state)
    assert fresh._brackets[0]._rungs[-1][1] == {"trial_a": -1.5}
