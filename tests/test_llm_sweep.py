"""A whole LLM baseline through Ray Tune and MLflow, with a tiny chat LM trained in the test.

The model (tests/tiny_llm.py) is trained for a few seconds to answer A.5 zero-shot prompts in
the JSON the prompt asks for; nothing is mocked: transformers generates greedily through the
tokenizer's chat template, the parser reads the answers, the scores and raw answers land in the
stage store, the driver logs them to MLflow and the report shows the LLM rows beside the paper's.
"""
from __future__ import annotations

import json

import pytest
import yaml

from tests.test_sweep_e2e import mlflow_runs, run_sweep, tune_reports
from tests.tiny_llm import save_tiny_chat_lm

MAX_EVAL = 24


@pytest.fixture(scope="module")
def tiny_chat_lm(tmp_path_factory, data_root) -> str:
    from trainables.data import load_dataset
    from trainables.llm.prompts import zero_shot_prompt

    ds = load_dataset("isear", data_root, split_seed=13)
    labels = list(ds.labels)
    texts, gold = ds.train.texts[:200], ds.train.labels[:200]
    return save_tiny_chat_lm(tmp_path_factory.mktemp("tiny-chat-lm"), [zero_shot_prompt(t, labels) for t in texts],
                             [labels[i] for i in gold], labels, steps=40)


def llm_spec(model: str) -> dict:
    common = {"model": model, "max_new_tokens": 20, "batch_size": 8}
    return {"name": "llm_e2e", "seeds": [0, 1], "datasets": ["isear"], "data": {"max_eval": MAX_EVAL},
            "methods": [{"name": "tiny_zs", "base": "llama3_8b_zs", **common},
                        {"name": "tiny_fs", "base": "llama3_8b_fs", "prompts": 2, **common}],
            "resources": {"cpus_per_trial": 1, "gpus_per_llm_trial": 0}}


@pytest.fixture(scope="module")
def llm_sweep(tmp_path_factory, tiny_chat_lm, data_root):
    workdir = tmp_path_factory.mktemp("llm-sweep")
    spec_path = workdir / "llm_e2e.yaml"
    spec_path.write_text(yaml.safe_dump(llm_spec(tiny_chat_lm)))
    out = run_sweep(workdir, spec_path, data_root)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return workdir, spec_path, out


@pytest.mark.slow
def test_llm_trials_land_in_mlflow_with_scores_counts_and_raw_answers(llm_sweep):
    workdir, _, _ = llm_sweep
    client, runs = mlflow_runs(workdir, "llm_e2e")
    assert sorted(r.info.run_name for r in runs) == ["isear-tiny_fs-seed0", "isear-tiny_fs-seed1", "isear-tiny_zs-seed0"]
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["emocal.kind"] == "llm"
        m = run.data.metrics
        for split in ("test", "ood"):  # ID test, and the OOD test without fine-tuning
            assert m[f"{split}_answers"] == MAX_EVAL
            assert 0 <= m[f"{split}_macro_f1"] <= 100 and 0 <= m[f"{split}_ece"] <= 100
            assert [h.step for h in client.get_metric_history(run.info.run_id, f"{split}_macro_f1")] == [1]
            local = client.download_artifacts(run.info.run_id, f"gen1/answers_{split}.jsonl", str(workdir / run.info.run_id))
            rows = [json.loads(line) for line in open(local)]
            assert len(rows) == MAX_EVAL and sum(r["prediction"] is None for r in rows) == m[f"{split}_unusable"]
            assert sum(r["cut"] for r in rows) == m[f"{split}_cut"] == 0  # the JSON is 6 tokens: never cut at 20
        prompt = client.download_artifacts(run.info.run_id, "gen1/prompt_test.txt", str(workdir / run.info.run_id))
        few_shot = run.data.tags["method"] == "tiny_fs"
        assert open(prompt).read().startswith("Given the following text:" if few_shot else "You will receive a short text.")
    zero_shot = next(r for r in runs if r.data.tags["method"] == "tiny_zs")
    # the trained tiny LM answers the zero-shot prompt in the JSON asked for: every answer parses
    assert zero_shot.data.metrics["test_unusable"] == 0 and zero_shot.data.metrics["ood_unusable"] == 0
    answers = open(client.download_artifacts(zero_shot.info.run_id, "gen1/answers_test.jsonl", str(workdir / "zs")))
    first = json.loads(next(answers))
    assert first["answer"].startswith("{'prediction': '") and first["confidence"] == 0.8


@pytest.mark.slow
def test_llm_trials_report_to_tune_and_resume_runs_nothing_again(llm_sweep, data_root):
    workdir, spec_path, _ = llm_sweep
    reports = tune_reports(workdir, "llm_e2e")
    assert len(reports) == 3 and all(r["stage_trained"] == 1 and r["stage"].startswith("llm-") for r in reports)
    log = workdir / "runs" / "llm_e2e" / "stages" / "trained.log"
    before = log.read_text()
    assert len(before.split()) == 3
    out = run_sweep(workdir, spec_path, data_root, "--resume")
    assert out.returncode == 0, out.stderr[-5000:]
    assert log.read_text() == before
    client, runs = mlflow_runs(workdir, "llm_e2e")
    assert len(runs) == 3 and all(len(client.get_metric_history(r.info.run_id, "test_macro_f1")) == 1 for r in runs)


@pytest.mark.slow
def test_report_has_the_llm_rows_beside_the_paper(llm_sweep):
    workdir, _, out = llm_sweep
    report = (workdir / "runs" / "llm_e2e" / "report.md").read_text()
    assert "### isear: LLM baselines" in report
    # the paper's rows, not run here: its values in the reference table (Table 2 has few-shot rows only)
    reference = report.split("the paper's rows not run here")[1]
    assert "| llama3_8b_zs | meta-llama/Meta-Llama-3-8B-Instruct | 69.81 (69.88) / 14.56 |  |" in reference
    assert ("| gemma2_9b_fs | google/gemma-2-9b-it | 74.41±0.4 (74.44±0.4) / 15.66±0.4 | "
            "69.72±0.4 (75.80±0.2) / 12.39±0.3 |") in reference
    assert f"| tiny_zs |  | 1 | " in report and f"| 0/{MAX_EVAL} |" in report
    assert "| tiny_fs |  | 2 | " in report
    assert "ID test (Table 1 layout)" not in report  # no chain ran: no empty chain tables
    assert "LLM baselines" in out.stdout


@pytest.mark.slow  # trains the tiny chat LM first (tiny_chat_lm)
def test_an_llm_stage_is_deterministic(tiny_chat_lm, data_root, tmp_path):
    from orchestrator.plan import build_plan
    from orchestrator.spec import parse_spec
    from trainables.llm.stage import run_llm_stage
    from trainables.store import StageStore

    raw = {**llm_spec(tiny_chat_lm), "data": {"max_eval": 8}}
    stage = build_plan(parse_spec(raw, data_root=str(data_root)))[0].stages[0]
    first = run_llm_stage(stage, StageStore(tmp_path / "a"))
    second = run_llm_stage(stage, StageStore(tmp_path / "b"))
    assert first["metrics"] == second["metrics"]
    answers = [(tmp_path / s / stage.key() / "artifacts" / "answers_test.jsonl").read_text() for s in "ab"]
    assert answers[0] == answers[1] and len(answers[0].splitlines()) == 8


@pytest.mark.slow  # trains the tiny chat LM first (tiny_chat_lm)
def test_answers_cut_at_max_new_tokens_are_counted_and_ood_examples_may_come_from_the_ood_pool(
        tiny_chat_lm, data_root, tmp_path):
    """At 3 new tokens the tiny LM's 6-token JSON never closes: every answer is cut and the cut hid it.
    A few-shot row with examples_from: ood_pool asks the OOD test texts with examples of the OOD pool."""
    from orchestrator.plan import build_plan
    from orchestrator.spec import parse_spec
    from trainables.data import load_dataset
    from trainables.llm.stage import run_llm_stage
    from trainables.store import StageStore

    raw = {**llm_spec(tiny_chat_lm), "data": {"max_eval": 6}}
    raw["methods"] = [{"name": "tiny_fs_cut", "base": "llama3_8b_fs", "model": tiny_chat_lm, "prompts": 1,
                       "max_new_tokens": 3, "batch_size": 8, "examples_from": "ood_pool"}]
    (plan,) = build_plan(parse_spec(raw, data_root=str(data_root)))
    assert plan.stages[0].llm.examples_from == "ood_pool"
    result = run_llm_stage(plan.stages[0], StageStore(tmp_path))
    m = result["metrics"]
    for split in ("test", "ood"):
        assert m[f"{split}_cut"] == m[f"{split}_cut_no_answer"] == m[f"{split}_unusable"] == 6
    pool = set(load_dataset("emotion_stimulus", data_root, split_seed=13).train.texts)
    id_train = set(load_dataset("isear", data_root, split_seed=13).train.texts)
    assert {t for t, _ in result["few_shot_examples_ood"]} <= pool
    assert {t for t, _ in result["few_shot_examples"]} <= id_train
    assert len(result["few_shot_examples_ood"]) == 12  # 2 per class
