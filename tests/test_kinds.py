"""One registry of methods, each of a kind that says how it is planned, run and recorded
(orchestrator/kinds.py), and the frozen objects that cross the Ray boundary."""
from __future__ import annotations

import dataclasses
import pickle

import pytest

from orchestrator.kinds import KINDS, kind_of
from orchestrator.plan import build_plan
from orchestrator.spec import SpecError, parse_spec
from trainables.llm.methods import LLM_PRESETS
from trainables.methods.registry import METHODS, PRESETS, get_method, list_methods


def _spec(data_root, methods, seeds=(0, 1, 2), **extra):
    return parse_spec({"name": "kinds", "seeds": list(seeds), "datasets": ["isear"], "methods": methods,
                       "generations": 2, **extra}, data_root=str(data_root))


def test_one_registry_holds_every_preset_and_each_has_a_kind():
    assert set(METHODS) == set(PRESETS) | set(LLM_PRESETS)
    assert all(m.kind in KINDS for m in METHODS.values())
    assert list_methods() == sorted(PRESETS)  # the trained rows, as before
    assert list_methods("llm") == sorted(LLM_PRESETS)
    assert list_methods(None) == sorted(METHODS)
    assert get_method("gemma2_9b_fs") is LLM_PRESETS["gemma2_9b_fs"]
    with pytest.raises(ValueError, match="known methods: .*ce_ts.*gemma2_9b_fs.*sim_mixup_csd"):
        get_method("gemma2_9b")
    assert "kind" not in {f.name for f in dataclasses.fields(get_method("ce"))}  # never in a fingerprint


def test_an_unknown_method_in_a_spec_lists_every_preset_of_every_kind(data_root):
    for entry in ("llama3_8b", {"name": "mine", "base": "llama3_8b"}):
        with pytest.raises(SpecError) as err:
            _spec(data_root, [entry])
        assert all(name in str(err.value) for name in METHODS), err.value


def test_each_kind_plans_runs_and_asks_for_its_own_resources(data_root):
    spec = _spec(data_root, ["ce", "llama3_8b_fs"], resources={"gpus_per_trial": 0.25, "gpus_per_llm_trial": 1})
    trials = build_plan(spec)
    by_kind = {kind_of(t).name: [u.key for u in trials if kind_of(u) is kind_of(t)] for t in trials}
    assert by_kind == {"chain": ["isear-ce-seed0", "isear-ce-seed1", "isear-ce-seed2"],
                       "llm": ["isear-llama3_8b_fs-seed0", "isear-llama3_8b_fs-seed1", "isear-llama3_8b_fs-seed2"]}
    assert {kind_of(t).name: kind_of(t).gpus(spec.resources) for t in trials} == {"chain": 0.25, "llm": 1.0}
    assert [kind_of(t).trains for t in trials] == [True] * 3 + [False] * 3
    llm = kind_of(trials[-1]).planned_run(trials[-1], spec.name)
    assert llm.tags["emocal.kind"] == "llm" and llm.params["shots_per_class"] == 2
    assert "emocal.kind" not in kind_of(trials[0]).planned_run(trials[0], spec.name).tags


def test_a_kinds_own_spec_checks_still_refuse(data_root):
    with pytest.raises(SpecError, match=r"methods\[0\]: llama3_8b_fs has 3 few-shot prompts"):
        _spec(data_root, ["llama3_8b_fs"], seeds=(0,))
    with pytest.raises(SpecError, match=r"methods\[0\]\.train: .*with dataset isear"):
        _spec(data_root, [{"name": "bad", "base": "ce", "train": {"epochs": 0}}])


def test_plans_and_settings_cross_ray_as_frozen_dataclasses(data_root):
    """What tune.with_parameters and a stage task carry: pickled and back, equal, same keys."""
    from orchestrator.trial import StageRun, TrialSettings

    trials = build_plan(_spec(data_root, ["csd", "llama3_8b_zs"]))
    again = pickle.loads(pickle.dumps(trials))
    assert again == trials
    assert [[s.key() for s in t.all_stages] for t in again] == [[s.key() for s in t.all_stages] for t in trials]
    assert [t.fingerprint for t in again] == [t.fingerprint for t in trials]
    settings = TrialSettings(store_root="/runs/x/stages", keep=frozenset({trials[0].stages[0].key()}))
    assert pickle.loads(pickle.dumps(settings)) == settings
    for frozen in (settings, StageRun({"key": "g1-x"}, "node")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            frozen.store_root = "elsewhere" if frozen is settings else None  # type: ignore[misc]
