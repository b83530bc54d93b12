"""What one generation hands the next through Ray (issue 14): only stages a student reads keep a
handover; a longer chain shares a shorter one's stages, and a stage that kept none is trained
again for its new student rather than failing or being stored twice."""
from __future__ import annotations

import pytest

from orchestrator.plan import build_plan, handover_keys
from orchestrator.spec import parse_spec
from tests.test_sweep_e2e import tiny_spec
from trainables.stage import load_handover
from trainables.store import StageStore


def csd_plan(tiny_model: str, data_root, generations: int):
    raw = {**tiny_spec(tiny_model, "chain"), "methods": ["csd"], "generations": generations,
           "ood": {"percents": [1], "epochs": 1}}
    return build_plan(parse_spec(raw, data_root=str(data_root)))[0]


def test_only_parents_keep_a_handover(tiny_model, data_root):
    spec = parse_spec({**tiny_spec(tiny_model, "keep"), "generations": 3}, data_root=str(data_root))
    trials = build_plan(spec)
    kept = handover_keys(trials)
    by_method = {t.method.name: t for t in trials}
    csd, sim = by_method["csd"], by_method["sim_mixup_csd"]
    assert kept == {csd.stages[0].key(), csd.stages[1].key(), sim.stages[0].key(), sim.stages[1].key()}
    assert sim.data_map.key() == csd.stages[0].key()  # the data map is kept only because csd distils from it
    assert csd.stages[2].key() not in kept and sim.stages[2].key() not in kept


@pytest.mark.slow
def test_a_longer_chain_trains_again_only_the_handover_its_shorter_prefix_did_not_keep(tiny_model, data_root,
                                                                                      tmp_path):
    import ray

    from orchestrator.trial import _Chain

    short, long = csd_plan(tiny_model, data_root, 2), csd_plan(tiny_model, data_root, 3)
    assert [s.key() for s in long.stages[:2]] == [s.key() for s in short.stages]  # no chain length in a key
    store = StageStore(tmp_path / "stages")
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        for plan in (short, long):
            chain = _Chain(store, 1, 0, plan.key, keep=handover_keys([plan]))
            results = [chain.ensure(spec, plan.stages[0].key()) for spec in plan.stages]
    finally:
        ray.shutdown()
    assert store.load_result(short.stages[1].key())["kept"] == []  # the short chain's last stage kept nothing
    assert results[2]["generation"] == 3 and "test_macro_f1" in results[2]["metrics"]
    # each stage stored once; the short chain's g2 ran again only to hand over, and its stored copy stays
    assert (store.root / "trained.log").read_text().split() == [s.key() for s in long.stages]
    assert store.load_result(long.stages[1].key())["kept"] == []
    # ...and its handover is stored beside it, so a restart before g3 ends does not train g2 a third time
    handover = load_handover(store, long.stages[1].key())
    labels = store.load_result(long.stages[1].key())["labels"]
    assert handover is not None and handover.weights and handover.train_logits.shape[1] == len(labels)
    assert (store.root / "handovers" / "trained.log").read_text().split() == [long.stages[1].key()]
    assert load_handover(store, long.stages[2].key()) is None  # the last generation still keeps none


@pytest.mark.slow
def test_an_exportable_stage_stored_without_weights_is_trained_again_to_keep_them(tiny_model, data_root, tmp_path):
    """A sweep whose spec now lists the pair in `export:` finds its last generation stored without
    weights (an earlier sweep did not export it): it trains it again only to keep them beside it."""
    import ray

    from orchestrator.plan import export_keys
    from orchestrator.trial import _Chain

    raw = {**tiny_spec(tiny_model, "exportable"), "methods": ["ce"], "generations": 1,
           "datasets": [{"name": "isear", "ood_finetune": False}]}  # OOD fine-tuning is not what this tests
    plan = build_plan(parse_spec(raw, data_root=str(data_root)))[0]
    key = plan.stages[0].key()
    store = StageStore(tmp_path / "stages")
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        _Chain(store, 1, 0, plan.key, keep=handover_keys([plan])).ensure(plan.stages[0], key)
        assert load_handover(store, key) is None  # the last generation keeps nothing
        exportable = frozenset(export_keys([plan], [("isear", "ce")]))
        chain = _Chain(store, 1, 0, plan.key, keep=exportable, export=exportable)
        result = chain.ensure(plan.stages[0], key)
    finally:
        ray.shutdown()
    assert result == store.load_result(key) and result["kept"] == []  # the stored stage is as it was
    handover = load_handover(store, key)
    assert handover is not None and handover.weights
    assert (store.root / "trained.log").read_text().split() == [key]  # stored once


@pytest.mark.slow
def test_a_released_teacher_is_trained_again_for_a_new_student_only_if_it_reproduces(tiny_model, data_root,
                                                                                    tmp_path):
    """After a sweep removed a teacher's weights (every student of its own stored), a later chain
    with another student of it trains it again and takes the weights only because the new test
    logits equal the stored ones; a stage whose stored numbers are not reproduced is refused."""
    import numpy as np
    import ray

    from orchestrator.trial import _Chain, release_read_handovers
    from trainables.stage import HandoverMismatchError, run_stage

    csd = csd_plan(tiny_model, data_root, 2)
    raw = {**tiny_spec(tiny_model, "chain"), "methods": ["sd"], "generations": 2, "ood": {"percents": [1], "epochs": 1}}
    sd = build_plan(parse_spec(raw, data_root=str(data_root)))[0]
    teacher = csd.stages[0].key()
    assert sd.stages[0].key() == teacher and sd.stages[1].key() != csd.stages[1].key()
    store = StageStore(tmp_path / "stages")
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        chain = _Chain(store, 1, 0, csd.key, keep=handover_keys([csd]))
        for spec in csd.stages:
            chain.ensure(spec, teacher)
        assert release_read_handovers(store, teacher, frozenset({sd.stages[1].key()})) == 0  # a reader is missing
        assert release_read_handovers(store, teacher, frozenset({csd.stages[1].key()})) > 0
        assert load_handover(store, teacher) is None
        chain = _Chain(store, 1, 0, sd.key, keep=handover_keys([sd]))
        results = [chain.ensure(spec, teacher) for spec in sd.stages]
    finally:
        ray.shutdown()
    assert results[1]["generation"] == 2 and "test_macro_f1" in results[1]["metrics"]
    assert (store.root / "handovers" / "trained.log").read_text().split() == [teacher]  # proven, then kept
    bad = StageStore(tmp_path / "bad")
    bad.save(teacher, {"key": teacher, "kept": []}, None, {"test_logits": np.zeros((1, 1), np.float32)})
    with pytest.raises(HandoverMismatchError, match="differ from the stored ones"):
        run_stage(csd.stages[0], None, None, None, bad, keep=True)
    assert not (bad.root / "handovers" / teacher).exists()
