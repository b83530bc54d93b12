"""The cost model (orchestrator/cost.py): its arithmetic by hand, its fit recovering what made the
data, the coefficient file's checks, and the disk preflight refusing a run folder too small."""
from __future__ import annotations

import argparse
import json
import dataclasses
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from orchestrator import cost
from orchestrator.spec import Resources, parse_spec

QUICK = {"name": "q", "model": "packaged:all-MiniLM-L6-v2", "max_length": 32, "seeds": [0], "generations": 2,
         "methods": ["ce", "csd"], "datasets": ["isear"], "data": {"max_train": 64, "max_eval": 40},
         "train": {"epochs": 1, "batch_size": 16}, "ood": {"percents": [1], "epochs": 1},
         "resources": {"cpus_per_trial": 1}}


# ---- token counts by hand


def test_eval_tokens_sort_then_pad_each_batch_to_its_widest():
    # sorted [1, 2 | 3, 10]: 2 rows x 2 + 2 rows x 10
    assert cost.eval_tokens(np.array([10, 1, 3, 2]), batch_size=2) == 24
    assert cost.eval_tokens(np.array([5, 5, 5]), batch_size=2) == 15  # the last batch is short
    assert math.isnan(cost.eval_tokens(np.array([np.nan, 3.0]), 2))  # lengths unknown (no tokeniser)


def test_training_tokens_count_each_partner_row_and_the_widest_of_the_batch():
    same = np.full(10, 7)
    assert cost.padded_tokens(same, np.arange(10), 4, group_by_length=False) == 70
    assert cost.padded_tokens(same, np.arange(10), 4, group_by_length=True, partners=2) == 3 * 70  # Sim-MixUp: 3 rows
    # one long partner pads its batch: rows of length 1, the pool holds only a length-9 row
    lengths = np.array([1, 1, 1, 1, 9])
    assert cost.padded_tokens(lengths, np.arange(4), 2, False, partners=1, partner_pool=np.array([4])) == 4 * 2 * 9


# ---- pricing


C = cost.Coefficients(hardware="hw", model="m", provenance=cost.Provenance("s", "mach", "2026-12-03", "abc"),
                      train_s_per_token={"ce_teacher": 2.0, "student": 1.0, "mixup_teacher": 3.0},
                      eval_s_per_token=0.5, ood_s_per_token=4.0, setup_s=10.0, stage_overhead_s=5.0,
                      sweep_overhead_s=30.0, trials_at_once=2)


def work(key="g1-a", kind="ce_teacher", **kw) -> cost.StageWork:
    d = dict(key=key, kind=kind, train_tokens=100.0, validation_tokens=20.0, eval_tokens=40.0, ood_eval_tokens=8.0,
             ood_train_tokens=3.0, array_bytes=1000.0, weight_bytes=0.0, handover_bytes=0.0)
    return cost.StageWork(**{**d, **kw})


def test_a_stage_is_priced_part_by_part():
    c = cost.stage_cost(work(), C)
    assert c.train == 2.0 * 100 + 0.5 * 20  # its steps and the per-epoch validation
    assert c.ood == 4.0 * 3 + 0.5 * 8
    assert c.evaluation == 0.5 * 40
    assert c.overhead == 10 + 5
    assert c.total == 210 + 16 + 20 + 15
    assert cost.stage_cost(work(kind="student"), C).train == 1.0 * 100 + 10


def test_a_missing_coefficient_prices_nothing_that_needs_it():
    c = cost.stage_cost(work(kind="lcl_teacher"), C)  # no lcl_teacher coefficient
    assert c.train is None and c.total is None and c.evaluation == 20
    assert cost.stage_cost(work(ood_train_tokens=0.0, ood_eval_tokens=0.0), dataclasses.replace(
        C, ood_s_per_token=None)).ood == 0.0  # no OOD work needs no OOD coefficient
    assert cost.stage_cost(work(train_tokens=math.nan), C).train is None  # token lengths unknown


@dataclass(frozen=True)
class _Stage:
    name: str

    def key(self) -> str:
        return self.name


@dataclass(frozen=True)
class _Trial:
    all_stages: tuple


def test_the_schedule_waits_for_shared_stages_and_fills_the_slots():
    a, b, c = _Stage("a"), _Stage("b"), _Stage("c")
    seconds = {"a": 10.0, "b": 4.0, "c": 7.0}
    teacher, student = _Trial((a,)), _Trial((a, b))
    # the student reaches `a` while the teacher trains it and waits: 10 + 4 on one slot or two
    assert cost.simulate_wall([student, teacher], seconds, slots=1) == 14
    assert cost.simulate_wall([student, teacher], seconds, slots=2) == 14
    other = _Trial((c,))
    assert cost.simulate_wall([teacher, other], seconds, slots=1) == 17
    assert cost.simulate_wall([teacher, other], seconds, slots=2) == 10
    assert cost.simulate_wall([student, teacher], seconds, slots=1, done=frozenset({"a"})) == 4  # stored: skipped


def test_trial_slots_follow_cpus_gpu_shares_and_the_cap():
    assert cost.trial_slots(Resources(cpus_per_trial=1), 8, cpus=2, gpus=0) == 2
    assert cost.trial_slots(Resources(cpus_per_trial=2, gpus_per_trial=0.25), 8, cpus=16, gpus=1) == 4
    assert cost.trial_slots(Resources(cpus_per_trial=1, max_concurrent_trials=3), 8, cpus=16, gpus=0) == 3
    assert cost.trial_slots(Resources(cpus_per_trial=1), 1, cpus=16, gpus=0) == 1  # never more than the trials


def test_gpu_memory_is_adams_16_bytes_a_parameter_plus_the_measured_activations(data_root):
    from orchestrator.plan import build_plan

    spec = parse_spec({**QUICK, "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0.5}}, source_path="q.yaml",
                      data_root=str(data_root))
    trials = build_plan(spec)
    params = cost.parameter_count(QUICK["model"], cost.split_rows(trials[0].all_stages[0].data).labels)
    no_activations = cost.GpuMemory(peak_gib=16 * 1e8 / 2**30, params=1e8, tokens_per_step=1000, hidden_x_layers=100)
    c = dataclasses.replace(C, gpu_memory=no_activations)
    assert cost.gpu_memory_gib({}, trials, c) == pytest.approx(16 * params / 2**30)
    with_activations = dataclasses.replace(no_activations, peak_gib=no_activations.peak_gib + 1.0)
    assert cost.gpu_memory_gib({}, trials, dataclasses.replace(C, gpu_memory=with_activations)) > 16 * params / 2**30


# ---- the fit recovers the coefficients that made the seconds


def test_fit_recovers_the_coefficients_and_the_task_overhead(monkeypatch):
    works = {"g1-a": work("g1-a", train_tokens=300.0), "g2-b": work("g2-b", "student", train_tokens=200.0),
             "g1-c": work("g1-c", "mixup_teacher", train_tokens=500.0, eval_tokens=60.0)}
    truth = dataclasses.replace(C, stage_overhead_s=6.0)
    results = {}
    for k, w in works.items():
        p = cost.stage_cost(w, truth)
        results[k] = {"seconds": {"setup": truth.setup_s, "train": p.train, "evaluate": p.evaluation, "ood": p.ood}}
    trials = [_Trial((_Stage("g1-a"),)), _Trial((_Stage("g1-a"), _Stage("g2-b"))), _Trial((_Stage("g1-c"),))]
    wall = cost.simulate_wall(trials, {k: cost.stage_cost(w, truth).total for k, w in works.items()}, 2)
    monkeypatch.setattr(cost, "plan_work", lambda trials, keep_all=False: works)
    fitted = cost.fit(trials, results, "hw", "m", C.provenance, trials_phase_s=wall, sweep_overhead_s=30.0, slots=2)
    assert fitted.eval_s_per_token == pytest.approx(0.5)
    assert fitted.train_s_per_token == pytest.approx({"ce_teacher": 2.0, "student": 1.0, "mixup_teacher": 3.0})
    assert fitted.ood_s_per_token == pytest.approx(4.0)
    assert fitted.setup_s == 10.0
    assert fitted.stage_overhead_s == pytest.approx(6.0, abs=1e-3)


# ---- the coefficient file


def test_the_repo_coefficients_parse_and_each_says_where_it_comes_from():
    entries = cost.load_coefficients()
    assert entries
    for hw, c in entries.items():
        assert c.model and c.provenance.script and c.provenance.date and c.provenance.commit, hw


def test_a_bad_coefficient_file_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"mine": {"model": "m", "provenance": {"script": "s", "machine": "x", "date": "d",
                                                                         "commit": "c"}, "eval_s_per_tokn": 1.0}}))
    with pytest.raises(cost.CostError, match=r"c\.yaml\.mine: unknown key\(s\) \['eval_s_per_tokn'\]"):
        cost.load_coefficients(path)
    path.write_text(yaml.safe_dump({"mine": {"model": "m"}}))
    with pytest.raises(cost.CostError, match=r"mine\.provenance: missing"):
        cost.load_coefficients(path)


def test_an_unmeasured_hardware_kind_estimates_no_time_but_the_disk(data_root):
    spec = parse_spec(QUICK, source_path="q.yaml", data_root=str(data_root))
    from orchestrator.plan import build_plan

    e = cost.estimate(build_plan(spec), spec.resources, "tpu-v9", {"hw": C}, cpus=2, gpus=0)
    assert e.compute_s is None and e.wall_s is None
    assert any("tpu-v9: never measured" in m for m in e.missing)
    assert e.store_bytes > 0 and e.stages_with_weights == 1  # the CE teacher hands over to its student
    assert "not measured" in cost.format_estimate(e, 0)


# ---- the disk preflight


def test_the_disk_comparison_names_both_numbers_and_the_folder():
    assert cost.disk_shortfall(1e9, 2e9, Path("/r")) is None
    assert cost.disk_shortfall(2e9, 2e9, Path("/r")) is None
    why = cost.disk_shortfall(3e9, 1e9, Path("/runs/q"))
    assert "3.00 GB" in why and "1.00 GB" in why and "/runs/q" in why and "--ignore-disk-check" in why


def test_stages_already_stored_need_no_room(data_root, tmp_path):
    from orchestrator.plan import build_plan

    trials = build_plan(parse_spec(QUICK, source_path="q.yaml", data_root=str(data_root)))
    store = tmp_path / "stages"
    full = cost.needed_store_bytes(trials, store, reuse=True, keep_all=False)
    key = trials[0].all_stages[0].key()
    (store / key).mkdir(parents=True)
    (store / key / "result.json").write_text("{}")
    less = cost.needed_store_bytes(trials, store, reuse=True, keep_all=False)
    assert 0 < less < full
    assert cost.needed_store_bytes(trials, store, reuse=False, keep_all=False) > full  # each trial its own store


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 1 MiB tmpfs (mounting needs root; without it the test skips, saying so)."""
    where = tmp_path / "small"
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a size-limited tmpfs here (needs root): the comparison is tested above")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_run_folder_too_small_for_the_estimate_is_refused_before_ray_starts(tiny_filesystem, data_root, tmp_path,
                                                                                monkeypatch, capsys):
    from orchestrator import sweep

    spec_path = tmp_path / "q.yaml"
    spec_path.write_text(yaml.safe_dump(QUICK))

    def no_ray(options):
        raise AssertionError("Ray started although the stage store cannot fit")

    monkeypatch.setattr(sweep, "start_ray", no_ray)
    args = argparse.Namespace(spec=str(spec_path), data_root=str(data_root), runs=str(tiny_filesystem),
                              tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", dry_run=False, resume=False,
                              no_reuse=False, keep_all_weights=False, address=None, num_cpus=None, num_gpus=None,
                              dashboard_host="127.0.0.1", dashboard_port=8265, no_dashboard=True,
                              ignore_disk_check=False, format="table")
    assert sweep.run(args) == 2
    err = capsys.readouterr().err
    assert f"filesystem of {tiny_filesystem / 'q'}" in err and "GB free" in err and "--ignore-disk-check" in err
    assert not (tiny_filesystem / "q" / "stages").exists()
    args.ignore_disk_check = True  # the flag proceeds: to Ray's start, here the stand-in
    with pytest.raises(AssertionError, match="Ray started"):
        sweep.run(args)


def test_the_papers_encoder_is_sized_from_its_published_shape_without_the_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    head = 768 * 768 + 768 + 768 * 7 + 7
    assert cost.parameter_count("roberta-base", 7) - head == 124_645_632  # roberta-base's published count
    with pytest.raises(cost.CostError, match=r"model someone/unknown-model: its config is not here"):
        cost.model_config("someone/unknown-model")


def test_plan_needs_a_spec_or_a_run_folder_to_calibrate(tmp_path, capsys):
    from orchestrator.cli import build_parser
    from orchestrator.sweep import show_plan

    args = build_parser().parse_args(["plan", "--data-root", str(tmp_path)])
    assert show_plan(args) == 2 and "give a SPEC (or --calibrate RUN_FOLDER)" in capsys.readouterr().err
    args = build_parser().parse_args(["plan", "--calibrate", str(tmp_path), "--data-root", str(tmp_path)])
    assert show_plan(args) == 2 and f"{tmp_path}: no spec.yaml, so not a sweep's run folder" in capsys.readouterr().err


def test_calibrate_refits_a_run_folders_coefficients_and_writes_them_for_the_estimate(data_root, tmp_path):
    """A run folder whose stages took what known coefficients say: --calibrate gives them back, and
    the estimate with the file it writes replays the run's wall time."""
    from orchestrator.plan import build_plan

    spec = parse_spec(QUICK, source_path="q.yaml", data_root=str(data_root))
    trials = build_plan(spec)
    run = tmp_path / "q"
    (run / "stages").mkdir(parents=True)
    (run / "spec.yaml").write_text(yaml.safe_dump(QUICK))
    truth = dataclasses.replace(C, model=QUICK["model"], train_s_per_token={"ce_teacher": 2e-3, "student": 1e-3},
                                stage_overhead_s=3.0)
    works = cost.plan_work(trials)
    for key, w in works.items():
        p = cost.stage_cost(w, truth)
        (run / "stages" / key).mkdir()
        (run / "stages" / key / "result.json").write_text(json.dumps(
            {"key": key, "seconds": {"setup": truth.setup_s, "train": p.train, "evaluate": p.evaluation, "ood": p.ood}}))
    wall = cost.simulate_wall(trials, {k: cost.stage_cost(w, truth).total for k, w in works.items()}, 2)
    (run / "sweep_seconds.json").write_text(json.dumps({"plan": 10.0, "trials": wall, "report": 20.0}))
    fitted, out = cost.calibrate(run, str(data_root), "hw-test", cpus=2)
    assert fitted.train_s_per_token == pytest.approx({"ce_teacher": 2e-3, "student": 1e-3})
    assert fitted.eval_s_per_token == pytest.approx(0.5) and fitted.stage_overhead_s == pytest.approx(3.0, abs=1e-2)
    assert fitted.sweep_overhead_s == 30.0 and fitted.provenance.date and "2 trial(s) at once" in fitted.provenance.note
    e = cost.estimate(trials, spec.resources, "hw-test", cost.load_coefficients(out), cpus=2, gpus=0)
    assert e.wall_s == pytest.approx(wall + 30.0, rel=1e-3)


# ---- a launch-bound GPU: prices per step, trials sharing a GPU


GPU = dataclasses.replace(C, train_s_per_token={}, eval_s_per_token=None, ood_s_per_token=None,
                          train_s_per_step={"ce_teacher": 0.5, "student": 0.25}, eval_s_per_batch=0.1,
                          ood_s_per_step=0.2, gpu_sharing={1: 1.0, 2: 1.5, 4: 2.0})


def test_a_per_step_price_needs_no_token_lengths():
    w = work(train_tokens=math.nan, validation_tokens=math.nan, eval_tokens=math.nan, ood_eval_tokens=math.nan,
             ood_train_tokens=math.nan, train_steps=10.0, validation_batches=2.0, eval_batches=3.0,
             ood_eval_batches=4.0, ood_train_steps=6.0)
    c = cost.stage_cost(w, GPU)
    assert c.train == 0.5 * 10 + 0.1 * 2
    assert c.ood == 0.2 * 6 + 0.1 * 4
    assert c.evaluation == 0.1 * 3
    assert cost.stage_cost(w, C).train is None  # priced per token, and the tokens are unknown
    both = dataclasses.replace(GPU, train_s_per_token={"ce_teacher": 2.0})
    assert cost.stage_cost(work(train_steps=10.0, validation_batches=1.0), both).train == 2.0 * 100 + 0.5 * 10 + 0.1  # the two add up


def test_sharing_a_gpu_slows_each_trial_by_the_measured_throughput():
    assert cost.sharing_slowdown(GPU, 1) == 1.0
    assert cost.sharing_slowdown(GPU, 2) == pytest.approx(2 / 1.5)
    assert cost.sharing_slowdown(GPU, 3) == pytest.approx(3 / 1.75)  # between the measured 2 and 4
    assert cost.sharing_slowdown(GPU, 8) is None  # never measured: no figure


def test_a_gpu_sharing_table_must_start_at_one_trial(tmp_path):
    entry = {"model": "m", "provenance": {"script": "s", "machine": "m", "date": "d", "commit": "c"},
             "gpu_sharing": {2: 1.7}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"hw": {**entry, "gpu_sharing": {1: 0.9, 2: 1.7}}}))
    with pytest.raises(cost.CostError, match=r"hw\.gpu_sharing"):
        cost.load_coefficients(path)
    path.write_text(yaml.safe_dump({"hw": entry}))
    assert cost.load_coefficients(path)["hw"].gpu_sharing == {2: 1.7}


def test_the_gpu_estimate_prices_the_measured_model_and_bounds_the_rest(data_root):
    from orchestrator.plan import build_plan

    spec = parse_spec({**QUICK, "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0.5}}, source_path="q.yaml",
                      data_root=str(data_root))
    trials = build_plan(spec)
    c = dataclasses.replace(GPU, model=QUICK["model"], train_s_per_step={"ce_teacher": 0.5, "student": 0.25})
    e = cost.estimate(trials, spec.resources, "hw", {"hw": c}, cpus=4, gpus=1)
    assert e.compute_s is not None and e.wall_s is not None
    assert e.slowdown == pytest.approx(2 / 1.5)  # two trials on the one GPU
    assert set(e.wall_by_share) == {1.0, 0.5, 0.25}
    n, alone = e.wall_by_share[1.0]
    assert n == 1 and e.wall_by_share[0.5] == (2, pytest.approx(e.wall_s))
    # the csd trial waits for the CE teacher: two at once only slow each other down here
    assert e.wall_by_share[0.5][1] > alone > 0
    other = cost.estimate(trials, spec.resources, "hw", {"hw": dataclasses.replace(c, model="another")}, cpus=4, gpus=1)
    assert other.compute_s is None and other.partial_compute_s is None  # nothing of that model measured
    assert any("measured on another only" in m for m in other.missing)


def test_the_store_peaks_before_a_teachers_weights_go_and_ends_without_them():
    a, b, c = _Stage("a"), _Stage("b"), _Stage("c")
    w = {k: work(k, array_bytes=10.0, weight_bytes=100.0 if k != "c" else 0.0) for k in "abc"}
    finish = {"a": 1.0, "b": 2.0, "c": 3.0}  # b reads a; c reads b
    peak, final = cost.store_timeline([_Trial((a, b, c))], w, 1.0, finish, {"a": frozenset({"b"}),
                                                                              "b": frozenset({"c"})})
    assert peak == (10 + 100 + 1) * 2  # a and b both whole, just before a's weights go
    assert final == 3 * (10 + 1)  # every stage's arrays and the rest; no weights
    kept = cost.store_timeline([_Trial((a, b, c))], w, 1.0, finish, {})[1]
    assert kept == 3 * 11 + 200  # --keep-all-weights or export: nothing goes
