"""The report's reporting rule and its provenance filter, on hand-made runs with hand-computed values.

The paper reports each (dataset, method) at ONE generation g*: the best seed-mean ID validation
macro F1. The runs below are built so that every seed's own best generation differs from g*,
so a report that picks per seed (or averages the wrong generation) gets other numbers.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
from types import SimpleNamespace

import pytest

from orchestrator import report
from orchestrator.results import (LLM, LLM_COUNTS, PER_SEED, SEED_MEAN, Generation, MethodResult, per_generation,
                                  reported_generation, summarise)

# seed -> generation -> (val macro F1, test macro F1, test ECE raw, test ECE after TS, OOD FT3 F1, OOD FT3 ECE, OOD no-FT F1)
CSD = {
    0: {1: (60, 40, 20, 9, 60, 9, 30), 2: (70, 45, 20, 8, 65, 8, 35), 3: (65, 50, 10, 3, 70, 4, 40)},
    1: {1: (62, 41, 20, 9, 61, 9, 31), 2: (61, 46, 20, 8, 66, 8, 36), 3: (68, 54, 10, 5, 72, 4, 43)},
    2: {1: (64, 42, 20, 9, 62, 9, 32), 2: (66, 47, 20, 8, 67, 8, 37), 3: (66, 58, 10, 7, 74, 4, 46)},
}
# seed means of validation F1: g1 62, g2 65.67, g3 66.33 -> g* = 3; per-seed bests: 2, 3, 2 (tie -> earliest)
# ties in the seed mean: g2 and g3 both 65 -> the earliest, g2
SD_TIE = {0: {1: (60, 1, 1, 1, 1, 1, 1), 2: (66, 2, 2, 2, 2, 2, 2), 3: (64, 3, 3, 3, 3, 3, 3)},
          1: {1: (60, 1, 1, 1, 1, 1, 1), 2: (64, 2, 2, 2, 2, 2, 2), 3: (66, 3, 3, 3, 3, 3, 3)}}


FIELDS = {f.name for f in dataclasses.fields(Generation)} - {"metrics"}


def row(flat: dict) -> Generation:
    """A row from one flat dict, as the report read them before rows were typed: what is not a field is a metric."""
    return Generation(**{k: v for k, v in flat.items() if k in FIELDS},
                      metrics={k: v for k, v in flat.items() if k not in FIELDS})


def changed(r: Generation, **values) -> Generation:
    """`r` with some fields or metrics changed."""
    return dataclasses.replace(r, **{k: v for k, v in values.items() if k in FIELDS},
                               metrics={**r.metrics, **{k: v for k, v in values.items() if k not in FIELDS}})


def rows_of(method: str, table: dict, ece_kind: str, pick: str = "best", encoder: str = "roberta-base") -> list[Generation]:
    rows = []
    for seed, gens in table.items():
        for g, (val, f1, ece, ece_ts, ft_f1, ft_ece, noft_f1) in gens.items():
            rows.append(row({"trial": f"isear-{method}-seed{seed}", "seed": seed, "dataset": "isear", "method": method,
                             "generation": g, "ece_kind": ece_kind, "pick": pick, "ood_percent": 3.0, "encoder": encoder,
                             "val_macro_f1": val, "test_macro_f1": f1, "test_weighted_f1": f1 + 1, "test_ece": ece,
                             "test_ece_ts": ece_ts, "ft_macro_f1": ft_f1, "ft_weighted_f1": ft_f1 + 1, "ft_ece": ft_ece,
                             "ood_macro_f1": noft_f1, "ood_weighted_f1": noft_f1 + 1, "ood_ece": 12.0}))
    return rows


def by_method(summary: list[MethodResult]) -> dict[str, MethodResult]:
    return {r.method: r for r in summary}


def test_one_generation_per_method_with_its_mean_and_std():
    s = by_method(summarise(rows_of("csd", CSD, "ts") + rows_of("sd", SD_TIE, "raw")))["csd"]
    assert s.generation == "3" and s.seeds == 3
    # at g3: test F1 50, 54, 58; ECE after TS 3, 5, 7; OOD FT3 F1 70, 72, 74; no-FT F1 40, 43, 46
    assert s.cells["id_macro_f1"] == pytest.approx((54.0, 4.0))
    assert s.cells["id_weighted_f1"] == pytest.approx((55.0, 4.0))
    assert s.cells["id_ece"] == pytest.approx((5.0, 2.0))  # CSD reports the scaled ECE
    assert s.cells["ood_ft_macro_f1"] == pytest.approx((72.0, 2.0))
    assert s.cells["ood_ft_ece"] == pytest.approx((4.0, 0.0))
    assert s.cells["ood_noft_macro_f1"] == pytest.approx((43.0, 3.0))


def test_ties_go_to_the_earliest_generation_and_raw_ece_for_sd():
    trials = {}
    for r in rows_of("sd", SD_TIE, "raw"):
        trials.setdefault(r.trial, {})[r.generation] = r
    assert reported_generation(trials) == 2
    s = by_method(summarise(rows_of("sd", SD_TIE, "raw")))["sd"]
    assert s.generation == "2" and s.cells["id_ece"].mean == pytest.approx(2.0)  # test_ece (raw), not test_ece_ts


def test_per_seed_pick_is_an_option_named_as_such():
    s = by_method(summarise(rows_of("csd", CSD, "ts"), pick=PER_SEED))["csd"]
    assert s.generation == "per seed 2,3,2" and s.pick == PER_SEED
    # seed 0 at g2 (45), seed 1 at g3 (54), seed 2 at g2 (47; its g2 and g3 tie on validation)
    mean = (45 + 54 + 47) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in (45, 54, 47)) / 2)
    assert s.cells["id_macro_f1"] == pytest.approx((mean, std))


def test_last_generation_presets_and_unfinished_seeds():
    rows = rows_of("csd", CSD, "ts", pick="last")
    assert by_method(summarise(rows))["csd"].generation == "3"
    assert by_method(summarise(rows_of("sd", SD_TIE, "raw", pick="last")))["sd"].generation == "3"  # its best is 2
    # seed 2 has not finished generation 3 yet: g* is chosen among generations every seed has
    partial = [r for r in rows_of("csd", CSD, "ts") if not (r.seed == 2 and r.generation == 3)]
    assert by_method(summarise(partial))["csd"].generation == "2"


def test_tables_11_and_12_mark_g_star_and_show_the_paper_per_generation():
    rows = rows_of("csd", CSD, "ts")
    gens = {g.generation: g for g in per_generation(rows)}
    assert [gens[g].reported for g in (1, 2, 3)] == [False, False, True]
    assert gens[1].cells["id_macro_f1"] == pytest.approx((41.0, 1.0))
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    assert "**54.00±4.00 / 5.00±2.00**" in text  # ours at g*, bold in the Table 11 layout
    assert ("| csd (paper) | 75.60±0.4 / 4.00±0.3 | 75.76±0.4 / 4.15±0.6 | **76.29±0.3 / 3.57±0.7** | "
            "75.93±0.4 / 4.03±0.4 |") in text
    assert "| method | gen 1 | gen 2 | gen 3 | gen 4 |" in text  # room for the paper's 4 generations
    # the ID table gives the paper's cell and the generation it comes from (Table 11's generation 3)
    assert ("| csd | roberta-base | 3 | g3 | 54.00±4.00 (55.00±4.00) | 5.00±2.00 | 76.29±0.3 (76.31±0.3) / 3.57±0.7 "
            "| g3 |") in text


ELECTRA = "google/electra-base-discriminator"
LCL_NOT_RUN = f"| electra_lcl | {ELECTRA} | 76.29±0.5 (76.31±0.5) / 8.71±0.5 |  |"  # in the reference table
REFERENCE = ("\n### isear: the paper's rows not run here (its values, for reference)\n\n"
             "| method | model | paper ID F1 macro (weighted) / ECE | paper OOD F1 macro (weighted) / ECE (LLMs: without "
             "fine-tuning) |\n|---|---|---|---|\n")
LLM_NOT_RUN = {
    "llama3_8b_zs": "| llama3_8b_zs | meta-llama/Meta-Llama-3-8B-Instruct | 69.81 (69.88) / 14.56 |  |\n",
    "gemma2_9b_zs": "| gemma2_9b_zs | google/gemma-2-9b-it | 74.39 (74.42) / 13.50 |  |\n",
    "llama3_8b_fs": ("| llama3_8b_fs | meta-llama/Meta-Llama-3-8B-Instruct | 69.74±0.6 (69.81±0.6) / 17.27±0.8 | "
                     "71.59±0.5 (75.12±0.6) / 11.40±0.8 |\n"),
    "gemma2_9b_fs": ("| gemma2_9b_fs | google/gemma-2-9b-it | 74.41±0.4 (74.44±0.4) / 15.66±0.4 | "
                     "69.72±0.4 (75.80±0.2) / 12.39±0.3 |\n")}


def test_rows_only_for_what_ran_and_the_papers_other_rows_for_reference():
    """A sweep of ce and csd (as the quickstart's chain): no n/a row anywhere, no LLM table; the paper's
    baseline and LLM rows it did not run, with the paper's values only, after the dataset's tables."""
    rows = rows_of("ce", {0: {1: (60, 40, 9, 4, 60, 6, 50)}, 1: {1: (62, 42, 11, 4, 62, 6, 52)}}, "raw") + rows_of(
        "csd", CSD, "ts")
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    assert "n/a" not in text and "LLM baselines" not in text
    tables, reference = text.split(REFERENCE)
    assert reference == f"{LCL_NOT_RUN}\n" + "".join(LLM_NOT_RUN.values())  # the last table of the dataset
    assert "llama3" not in tables and "electra_lcl" not in tables[tables.index("###"):]  # (the rule names its encoder)
    assert ("| method | encoder | seeds | gen | F1 macro (weighted) | ECE | paper F1 macro (weighted) / ECE | "
            "paper gen |\n|---|---|---|---|---|---|---|---|\n"
            "| ce | roberta-base | 2 | g1 | 41.00±1.41 (42.00±1.41) | 10.00±1.41 | 75.60±0.4 (75.62±0.4) / 9.12±0.3 |  |\n"
            "| csd | roberta-base | 3 | g3 | 54.00±4.00 (55.00±4.00) | 5.00±2.00 | 76.29±0.3 (76.31±0.3) / 3.57±0.7 "
            "| g3 |\n\n") in tables
    # a row that runs leaves the reference table, and the reference table goes once everything has run
    lcl = rows_of("electra_lcl", {0: {1: (61, 45, 7, 3, 62, 5, 51)}}, "raw", encoder=ELECTRA)
    text = report.markdown(summarise(rows + lcl), per_generation(rows + lcl), skipped=0)
    assert text.split(REFERENCE)[1] == "".join(LLM_NOT_RUN.values())
    llms = [row({"trial": f"isear-{m}", "seed": 0, "dataset": "isear", "method": m, "kind": LLM, "generation": 1,
                 "test_macro_f1": 40.0, "test_weighted_f1": 41.0, "test_ece": 20.0, "test_unusable": 0, "test_answers": 5,
                 "ood_unusable": 0, "ood_answers": 0}) for m in LLM_NOT_RUN]
    text = report.markdown(summarise(rows + lcl + llms), per_generation(rows + lcl + llms), skipped=0)
    assert "for reference" not in text and "n/a" in text  # the LLMs have no OOD numbers here


def test_electra_lcl_row_names_its_encoder_beside_the_papers_value():
    """Table 1's Electra+LCL row: in the reference table until it has run, then ours (one generation, raw ECE)
    on its encoder."""
    ce = rows_of("ce", {0: {1: (60, 40, 9, 4, 60, 6, 50)}}, "raw")
    text = report.markdown(summarise(ce), per_generation(ce), skipped=0)
    assert LCL_NOT_RUN in text
    lcl = rows_of("electra_lcl", {0: {1: (61, 45, 7, 3, 62, 5, 51)}, 1: {1: (63, 47, 9, 3, 64, 5, 53)}}, "raw",
                  encoder=ELECTRA)
    text = report.markdown(summarise(ce + lcl), per_generation(ce + lcl), skipped=0)
    assert LCL_NOT_RUN not in text
    assert (f"| electra_lcl | {ELECTRA} | 2 | g1 | 46.00±1.41 (47.00±1.41) | 8.00±1.41 | "
            "76.29±0.5 (76.31±0.5) / 8.71±0.5 |  |") in text
    assert "| ce | roberta-base | 1 | g1 |" in text


def test_paper_no_finetuning_value_beside_ours_and_contradiction_footnote():
    rows = rows_of("ce", {0: {1: (60, 40, 9, 4, 60, 6, 50)}, 1: {1: (62, 42, 11, 4, 62, 6, 52)}}, "raw")
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    assert "| 63.58±1.8 (70.50±1.7) / 8.20±0.9 |" in text  # Table 2's "RoBERTa (w/o finetuning)"
    ed = [changed(r, dataset="empathetic_dialogues", method="rand_mixup_csd") for r in rows_of("csd", CSD, "ts")]
    text = report.markdown(summarise(ed), per_generation(ed), skipped=0)
    assert "15.78" in text and "14.78" in text and "contradicts itself" in text


def test_llm_rows_average_their_prompts_and_sum_their_unusable_answers():
    # three few-shot prompts (seeds) of one LLM row: test macro F1 40/44/48, ECE 20/22/24, unusable 1/0/2 of 50
    rows = [row({"trial": f"isear-llama3_8b_fs-seed{s}", "seed": s, "dataset": "isear", "method": "llama3_8b_fs",
             "kind": LLM, "generation": 1, "ece_kind": "raw", "pick": "best", "ood_percent": None,
             "test_macro_f1": 40 + 4 * s, "test_weighted_f1": 50 + 4 * s, "test_ece": 20 + 2 * s,
             "ood_macro_f1": 30.0, "ood_weighted_f1": 35.0, "ood_ece": 10.0,
             "test_unusable": [1, 0, 2][s], "test_answers": 50, "ood_unusable": 0, "ood_answers": 60}) for s in range(3)]
    rows += rows_of("ce", {0: {1: (60, 40, 9, 4, 60, 6, 50)}}, "raw")
    summary = summarise(rows)
    llm = by_method(summary)["llama3_8b_fs"]
    assert llm.cells["id_macro_f1"] == pytest.approx((44.0, 4.0))
    assert (llm.counts["test_unusable"], llm.counts["test_answers"]) == (3, 150)
    text = report.markdown(summary, per_generation(rows), skipped=0)
    assert ("| llama3_8b_fs | llama3-8b(fs-3prompts) | 3 | 44.00±4.00 (54.00±4.00) | 22.00±2.00 | 3/150 | "
            "69.74±0.6 (69.81±0.6) / 17.27±0.8 | 30.00±0.00 (35.00±0.00) | 10.00±0.00 | 0/180 | "
            "71.59±0.5 (75.12±0.6) / 11.40±0.8 |") in text
    assert REFERENCE + LCL_NOT_RUN + "\n" + LLM_NOT_RUN["llama3_8b_zs"] + LLM_NOT_RUN["gemma2_9b_zs"] + \
        LLM_NOT_RUN["gemma2_9b_fs"] in text  # the paper's rows that have not run, for reference
    chain_table = text.split("ID test (Table 1 layout)")[1]
    assert "| ce | roberta-base | 1 | g1 |" in chain_table and "llama3_8b_fs" not in chain_table  # LLM rows have their own table


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory):
    """An empty MLflow SQLite store, made once: creating its tables takes seconds, copying the file none."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture()
def store(tmp_path, migrated_store):
    shutil.copy(migrated_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_sync_runs_continues_only_an_unchanged_plan(store):
    from mlflow import MlflowClient

    from orchestrator.tracking import SUPERSEDED, PlannedRun, ensure_experiment, sync_runs

    exp = ensure_experiment(store, "t")
    tags = {"seed": "0", "dataset": "isear", "method": "ce"}
    a = PlannedRun("isear-ce-seed0", "fp-1", tags, {"lr": 1})
    b = PlannedRun("isear-csd-seed0", "fp-2", {**tags, "method": "csd"}, {"lr": 1})
    first = sync_runs(store, exp, [a, b])
    assert sync_runs(store, exp, [a, b]) == first  # same plan: the same runs, none added
    changed = sync_runs(store, exp, [PlannedRun(a.trial_key, "fp-3", tags, {"lr": 2})])
    assert changed[a.trial_key] != first[a.trial_key]
    client = MlflowClient(store)
    old_a, old_b = (client.get_run(first[k]).data.tags for k in (a.trial_key, b.trial_key))
    assert old_a["emocal.status"] == SUPERSEDED and old_a["emocal.superseded_by"] == changed[a.trial_key]
    assert old_b["emocal.status"] == SUPERSEDED and old_b["emocal.superseded_reason"] == "trial no longer in the spec"
    # back to the first plan: the superseded run is never revived; a new one is made
    assert sync_runs(store, exp, [a])[a.trial_key] not in (first[a.trial_key], changed[a.trial_key])


def test_report_reads_current_runs_only_and_says_how_many_it_skipped(store, tmp_path):
    from mlflow import MlflowClient

    from orchestrator.tracking import PlannedRun, TrialRun, ensure_experiment, sync_runs

    exp = ensure_experiment(store, "t")
    tags = {"seed": "0", "dataset": "isear", "method": "ce", "emocal.ece": "raw", "emocal.report_generation": "best"}
    metrics = {"val_macro_f1": 50.0, "test_macro_f1": 40.0, "test_weighted_f1": 41.0, "test_ece": 9.0,
               "test_ece_ts": 4.0}
    old = sync_runs(store, exp, [PlannedRun("isear-ce-seed0", "old", tags, {})])
    TrialRun(store, old["isear-ce-seed0"], "old").log_generation(1, metrics)
    new = sync_runs(store, exp, [PlannedRun("isear-ce-seed0", "new", tags, {"model": "roberta-base"})])
    TrialRun(store, new["isear-ce-seed0"], "new").log_generation(1, {**metrics, "test_macro_f1": 77.0})
    # a run from an emocal before plan fingerprints (no status tag) is skipped too
    MlflowClient(store).create_run(exp, run_name="legacy", tags=tags)
    text = report.build_report(store, "t", out_dir=tmp_path / "out")
    assert "| ce | roberta-base | 1 | g1 | 77.00 (41.00) | 9.00 |" in text
    assert LCL_NOT_RUN in text  # the paper's baseline row, not run here
    assert "40.00" not in text and "Skipped 2 MLflow run(s)" in text
    assert (tmp_path / "out" / "report_generations.csv").is_file()
    with pytest.raises(RuntimeError, match="fingerprint"):
        TrialRun(store, new["isear-ce-seed0"], "old")


def test_experiment_opens_as_model_training_on_its_runs(store):
    from mlflow import MlflowClient

    from orchestrator.tracking import ensure_experiment

    exp = ensure_experiment(store, "t")
    assert MlflowClient(store).get_experiment(exp).tags["mlflow.experimentKind"] == "custom_model_development"
    assert f"#/experiments/{exp}/runs" in report.mlflow_ui_hint(store, exp)
    legacy = MlflowClient(store).create_experiment("old")  # made by an earlier emocal: tagged when reused
    ensure_experiment(store, "old")
    assert MlflowClient(store).get_experiment(legacy).tags["mlflow.experimentKind"] == "custom_model_development"


# ---- what the report prints beyond the ID table: OOD tables, Table 12, the rule, skipped runs ----

def test_ood_table_and_table_12_give_ours_at_g_star_beside_the_papers():
    rows = rows_of("csd", CSD, "ts") + rows_of("ce", {0: {1: (60, 40, 9, 4, 60, 6, 50)}, 1: {1: (62, 42, 11, 4, 62, 6, 52)}},
                                             "raw")
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    assert ("\n### isear: OOD test (Table 2 layout; after 3% fine-tuning, and without; same generation as the ID table)"
            "\n\n| method | gen | FT: F1 macro (weighted) | FT: ECE | paper FT: F1 (w) / ECE | no FT: F1 macro (weighted) | "
            "no FT: ECE | paper no FT (RoBERTa w/o finetuning) |\n|---|---|---|---|---|---|---|---|\n"
            # ce at g1: FT F1 60, 62; FT ECE 6, 6; no-FT F1 50, 52 and ECE 12: the paper's w/o-finetuning row beside it
            "| ce | g1 | 61.00±1.41 (62.00±1.41) | 6.00±0.00 | 79.68±3.0 (87.49±1.1) / 5.29±1.8 | 51.00±1.41 (52.00±1.41) | "
            "12.00±0.00 | 63.58±1.8 (70.50±1.7) / 8.20±0.9 |\n"
            # csd at g* = 3: FT F1 70, 72, 74; FT ECE 4; no-FT F1 40, 43, 46; no paper w/o-finetuning value of its own
            "| csd | g3 | 72.00±2.00 (73.00±2.00) | 4.00±0.00 | 79.89±2.4 (86.94±1.3) / 5.86±0.9 | 43.00±3.00 (44.00±3.00) | "
            "12.00±0.00 |  |\n") in text
    # Table 12: FT F1 / FT ECE per generation, g* in bold; the paper's row with its reported generation (3) in bold
    assert ("\n### isear: OOD after 3% fine-tuning per generation (Table 12 layout: macro F1 / ECE; ** marks the "
            "reported generation g*)\n\n| method | gen 1 | gen 2 | gen 3 | gen 4 |\n|---|---|---|---|---|\n"
            "| csd | 61.00±1.00 / 9.00±0.00 | 66.00±1.00 / 8.00±0.00 | **72.00±2.00 / 4.00±0.00** |  |\n"
            "| csd (paper) | 79.68±3.0 / 5.29±1.8 | 79.19±3.4 / 5.41±1.0 | **79.89±2.4 / 5.86±0.9** | 81.12±2.3 / 5.14±1.4 |\n"
            ) in text
    assert "\n### isear: ID test per generation (Table 11 layout: macro F1 / ECE; ** marks the reported generation g*)" in text
    assert "| ce |" not in text.split("per generation")[1]  # a one-generation method has no per-generation row
    assert text.startswith("\nReported generation: g* = the generation with the best seed-mean ID validation macro F1 "
                           "(ties: the earliest), one per (dataset, method), as the paper reports. Cells are mean±std "
                           "over seeds (sample std); the paper's values (mean±std over 5 seeds, roberta-base; "
                           "electra_lcl: ELECTRA-base) stand beside them with the generation they come from.\n")
    assert "Skipped" not in text and "contradicts itself" not in text


def test_without_fine_tuning_only_the_no_ft_columns_are_filled():
    rows = [changed(r, ood_percent=None, ft_macro_f1=math.nan, ft_weighted_f1=math.nan, ft_ece=math.nan)
            for r in rows_of("csd", CSD, "ts")]
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    assert "\n### isear: OOD test (Table 2 layout; without fine-tuning; same generation as the ID table)\n" in text
    assert "| csd | g3 | n/a (n/a) | n/a | 79.89±2.4 (86.94±1.3) / 5.86±0.9 | 43.00±3.00 (44.00±3.00) | 12.00±0.00 |  |" in text
    assert "Table 12" not in text and "Table 11 layout" in text  # no FT numbers: no Table 12 layout
    # no OOD numbers at all: no OOD table
    none = [changed(r, ood_macro_f1=math.nan) for r in rows]
    assert "OOD test (Table 2 layout" not in report.markdown(summarise(none), per_generation(none), skipped=0)


def test_per_seed_pick_and_skipped_runs_are_said_in_the_report():
    rows = rows_of("csd", CSD, "ts")
    text = report.markdown(summarise(rows, pick=PER_SEED), per_generation(rows), skipped=3)
    assert text.startswith("\nReported generation: each seed's own best generation by ID validation macro F1 "
                           "(per-seed pick: matches no column of the paper's). Cells are mean±std over seeds")
    assert ("\nSkipped 3 MLflow run(s) that are not current (superseded by a changed plan, trials no longer in the "
            "spec, or made by an emocal without plan fingerprints).\n") in text
    # seeds at generations 2, 3, 2: test F1 45, 54, 47; the label names each seed's generation
    assert "| csd | roberta-base | 3 | per seed 2,3,2 | 48.67±4.73 (49.67±4.73) |" in text
    assert "| csd | per seed 2,3,2 | " in text
    with pytest.raises(ValueError, match="pick must be"):
        summarise(rows, pick="per seed")


def test_a_dataset_the_paper_does_not_have_gets_no_paper_rows_and_datasets_are_sorted():
    rows = [changed(r, dataset="zz_local") for r in rows_of("csd", CSD, "ts")] + rows_of("csd", CSD, "ts")
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    local = text[text.index("### zz_local"):]
    assert text.index("### isear: ID test") < text.index("### zz_local: ID test")
    assert "electra_lcl" not in local and "(paper)" not in local  # nothing of the paper's for an unknown dataset
    assert "| csd | roberta-base | 3 | g3 | 54.00±4.00 (55.00±4.00) | 5.00±2.00 |  |  |" in local
    assert "| method | gen 1 | gen 2 | gen 3 |\n|---|---|---|---|\n" in local  # our 3 generations, no room for the paper's 4


def test_the_generation_is_picked_among_numbers_that_exist():
    # a generation whose validation F1 is missing for every seed is never g*, however early or late
    nan_val = {s: {1: (math.nan, 98, 9, 4, 60, 6, 50), 2: (60 + s, 40, 9, 4, 60, 6, 50), 3: (math.nan, 99, 9, 4, 60, 6, 50)}
               for s in (0, 1)}
    s = by_method(summarise(rows_of("sd", nan_val, "raw")))["sd"]
    assert s.generation == "2" and s.cells["id_macro_f1"].mean == 40 and s.generations_logged == 3
    # no generation every seed has finished: the earliest one logged
    trials = {t: {g: Generation(t, 0, "isear", "sd", g, metrics={"val_macro_f1": v}) for g, v in gens.items()}
              for t, gens in {"a": {2: 50, 3: 70}, "b": {4: 60}}.items()}
    assert reported_generation(trials) == 2
    # a seed whose test ECE is missing: mean over the others, and one value has no spread
    rows = rows_of("ce", {0: {1: (60, 40, 9, 4, 60, 6, 50)}, 1: {1: (62, 42, math.nan, 4, 62, 6, 52)}}, "raw")
    s = by_method(summarise(rows))["ce"]
    assert s.cells["id_ece"].mean == 9 and math.isnan(s.cells["id_ece"].std) and s.seeds == 2
    assert "| ce | roberta-base | 2 | g1 | 41.00±1.41 (42.00±1.41) | 9.00 |" in report.markdown(summarise(rows),
                                                                                                per_generation(rows), 0)


# ---- from MLflow: which runs, generations and metrics the report reads ----

BASE = {"val_macro_f1": 60.0, "test_macro_f1": 50.0, "test_weighted_f1": 51.0, "test_ece": 9.0, "test_ece_ts": 4.0,
        "ood_macro_f1": 40.0, "ood_weighted_f1": 41.0, "ood_ece": 12.0}


def ft(percent: int, f1: float) -> dict[str, float]:
    """One OOD fine-tuning percentage's metrics, as a trial logs them."""
    return {f"ood_ft{percent}_macro_f1": f1, f"ood_ft{percent}_weighted_f1": f1 + 1, f"ood_ft{percent}_ece": f1 / 10}


def test_collect_reads_current_trial_runs_per_generation_at_one_ood_percentage(store):
    """Which runs count, which generations and metrics each gives; an experiment with none says so."""
    from mlflow import MlflowClient

    from orchestrator.tracking import PlannedRun, TrialRun, ensure_experiment, sync_runs

    exp = ensure_experiment(store, "t")
    client = MlflowClient(store)
    assert report.build_report(store, "t") == "no finished generations in experiment 't' yet"
    client.create_run(exp, run_name="legacy", tags={"method": "ce", "dataset": "isear"})  # not current: skipped
    assert report.build_report(store, "t") == ("no finished generations in experiment 't' yet "
                                               "(skipped 1 run(s) that are not current)")
    csd = PlannedRun("isear-csd-seed1", "fp", {"seed": "1", "dataset": "isear", "method": "csd", "emocal.ece": "ts",
                                               "emocal.report_generation": "last"}, {"model": "roberta-base"})
    sd = PlannedRun("isear-sd", "fp", {"dataset": "isear", "method": "sd"}, {})  # no seed, ECE or pick tag, no model
    llm = PlannedRun("isear-llama3_8b_fs-seed2", "fp", {"seed": "2", "dataset": "isear", "method": "llama3_8b_fs",
                                                         "emocal.kind": "llm"}, {"model": "llama"})
    runs = sync_runs(store, exp, [csd, sd, llm])
    log = {k: TrialRun(store, runs[k], "fp") for k in runs}
    log[csd.trial_key].log_generation(2, {**BASE, **ft(3, 63), **ft(10, 70), **ft(30, 61), "test_macro_f1": 52.0})
    log[csd.trial_key].log_generation(1, {**BASE, **ft(3, 53), **ft(10, 60), **ft(30, 51)})
    log[sd.trial_key].log_generation(1, {**BASE, **ft(1, 11), **ft(5, 15), **ft(10, 20), **ft(30, 40)})
    log[llm.trial_key].log_generation(1, {**BASE, "test_unusable": 3, "test_answers": 150, "ood_unusable": 0,
                                          "ood_answers": 180})
    client.create_run(exp, run_name="notes", tags={"emocal.status": "current"})  # no method: not a trial, not counted

    def row(trial, seed, method, kind, generation, ece_kind, pick, percent, encoder, metrics):
        return Generation(trial=trial, seed=seed, dataset="isear", method=method, kind=kind, generation=generation,
                          ece_kind=ece_kind, pick=pick, ood_percent=percent, encoder=encoder, metrics=metrics)

    def chain(metrics, percent, f1):  # the ID and no-FT metrics, and the FT ones of one percentage
        return {**metrics, **ft(percent, f1), "ft_macro_f1": f1, "ft_weighted_f1": f1 + 1, "ft_ece": f1 / 10}

    rows, skipped = report.collect(store, "t")
    assert skipped == 1
    by_key = {(r.trial, r.generation): r for r in rows}
    assert len(rows) == len(by_key) == 4
    assert [r.generation for r in rows if r.method == "csd"] == [1, 2]
    # 3% where a run has it (3, 10, 30 -> 3); else the middle of its percentages (1, 5, 10, 30 -> 10)
    assert by_key[(csd.trial_key, 2)] == row(csd.trial_key, 1, "csd", "chain", 2, "ts", "last", 3.0, "roberta-base",
                                             chain({**BASE, "test_macro_f1": 52.0}, 3, 63))
    assert by_key[(csd.trial_key, 1)] == row(csd.trial_key, 1, "csd", "chain", 1, "ts", "last", 3.0, "roberta-base",
                                             chain(BASE, 3, 53))
    assert by_key[(sd.trial_key, 1)] == row(sd.trial_key, -1, "sd", "chain", 1, "raw", "best", 10.0, "", chain(BASE, 10, 20))
    # an LLM row reads its answer counts, and no fine-tuned OOD metric
    assert by_key[(llm.trial_key, 1)] == row(llm.trial_key, 2, "llama3_8b_fs", "llm", 1, "raw", "best", None, "llama",
                                             {**BASE, "test_unusable": 3, "test_answers": 150, "ood_unusable": 0,
                                              "ood_answers": 180})
    # a percentage asked for: every run at it, NaN where a run has none
    rows, _ = report.collect(store, "t", ood_percent=5)
    by_key = {(r.trial, r.generation): r for r in rows}
    assert by_key[(sd.trial_key, 1)] == row(sd.trial_key, -1, "sd", "chain", 1, "raw", "best", 5, "", chain(BASE, 5, 15))
    csd_at_5 = by_key[(csd.trial_key, 2)]
    assert csd_at_5.ood_percent == 5 and "ood_ft3_macro_f1" not in csd_at_5.metrics
    assert [math.isnan(csd_at_5.metrics[k]) for k in ("ft_macro_f1", "ft_weighted_f1", "ft_ece")] == [True] * 3
    with pytest.raises(SystemExit, match="no MLflow experiment 'nope'"):
        report.collect(store, "nope")


def test_collect_reads_past_mlflows_default_page_of_runs(monkeypatch):
    """MLflow returns one page of runs (1,000) unless asked for more: a larger experiment loses none."""
    import mlflow
    from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT

    legacy = SimpleNamespace(data=SimpleNamespace(tags={"method": "ce", "dataset": "isear"}))  # not current: skipped

    class Client:  # MLflow's paging: at most max_results runs a call
        def __init__(self, uri):
            pass

        def get_experiment_by_name(self, name):
            return SimpleNamespace(experiment_id="1")

        def search_runs(self, experiment_ids, max_results=SEARCH_MAX_RESULTS_DEFAULT):
            return [legacy] * min(SEARCH_MAX_RESULTS_DEFAULT + 1, max_results)

    monkeypatch.setattr(mlflow, "MlflowClient", Client)
    assert report.collect("uri", "t") == ([], SEARCH_MAX_RESULTS_DEFAULT + 1)


def test_report_files_hold_the_tables_with_every_column(tmp_path, monkeypatch):
    import csv

    llm = [row({"trial": "isear-llama3_8b_zs", "seed": 0, "dataset": "isear", "method": "llama3_8b_zs", "kind": LLM,
            "generation": 1, "ece_kind": "raw", "pick": "best", "ood_percent": None, "test_macro_f1": 40.0,
            "test_weighted_f1": 41.0, "test_ece": 20.0, "ood_macro_f1": 30.0, "ood_weighted_f1": 31.0, "ood_ece": 10.0,
            "test_unusable": 2.0, "test_answers": 50.0, "ood_unusable": 1.0, "ood_answers": 60.0})]
    rows = rows_of("csd", CSD, "ts") + llm
    asked = []
    monkeypatch.setattr(report, "collect", lambda *args: asked.append(args) or (rows, 2))
    out = tmp_path / "runs" / "out"  # made with its parents; written again into the same folder
    text = report.build_report("sqlite:///x.db", "exp", out_dir=out, ood_percent=3.0, pick=PER_SEED)
    assert report.build_report("sqlite:///x.db", "exp", out_dir=out, ood_percent=3.0, pick=PER_SEED) == text
    assert asked == [("sqlite:///x.db", "exp", 3.0)] * 2
    assert "per seed 2,3,2" in text and "Skipped 2 MLflow run(s)" in text
    assert (out / "report.md").read_text() == f"# exp\n{text}"
    with open(out / "report.csv", newline="") as f:
        header, *table = list(csv.reader(f))
    csd, zs = (dict(zip(header, r)) for r in table)
    assert len(table) == 2 and header[:5] == ["dataset", "method", "encoder", "seeds", "generation"]
    assert (csd["method"], csd["generation"], csd["id_macro_f1"], csd["ood_noft_ece"], csd["paper_id"]) == (
        "csd", "per seed 2,3,2", str((45 + 54 + 47) / 3), "12.0", "76.29±0.3 (76.31±0.3) / 3.57±0.7")
    # the LLM row's answer counts are columns of their own, blank in a chain row
    assert header[-10:] == list(LLM_COUNTS) and LLM_COUNTS[:4] == ("test_unusable", "test_answers", "ood_unusable",
                                                                   "ood_answers")
    assert [csd[k] for k in header[-10:]] == [""] * 10 and [zs[k] for k in header[-10:]] == ["2", "50", "1", "60"] + ["0"] * 6
    assert (zs["paper_id"], zs["paper_ood_ft"], zs["paper_ood_noft"], zs["paper_generation"]) == (
        "69.81 (69.88) / 14.56", "", "", "")  # an LLM row has the paper's ID value, no FT value and no generation
    with open(out / "report_generations.csv", newline="") as f:
        gens = list(csv.DictReader(f))
    assert [(g["method"], g["generation"], g["reported"], g["seeds"]) for g in gens] == [
        ("csd", "1", "False", "3"), ("csd", "2", "False", "3"), ("csd", "3", "True", "3"),
        ("llama3_8b_zs", "1", "True", "1")]
    # each generation's seed means, validation F1 included (g3: 65, 68, 66)
    assert (float(gens[2]["val_macro_f1"]), float(gens[2]["val_macro_f1_std"])) == pytest.approx((199 / 3, 1.5275252))


def test_the_mlflow_ui_hint_opens_the_current_runs():
    current = "tags.%60emocal.status%60%20%3D%20%27current%27"
    table = f"#/experiments/7/runs?searchFilter={current}&orderByKey=tags.%60mlflow.runName%60&orderByAsc=true"
    assert report.runs_view("7") == table
    assert report.runs_view("7", chart=True) == table + "&compareRunsMode=CHART"
    assert report.mlflow_ui_hint("http://mlflow:5000/", "7") == (
        f"MLflow runs:   http://mlflow:5000/{table}\nMLflow charts: http://mlflow:5000/{table}&compareRunsMode=CHART")
    assert report.mlflow_ui_hint("https://BOX", "7").startswith(f"MLflow runs:   https://BOX/{table}\n")
    assert report.mlflow_ui_hint("sqlite:////r/mlflow.db", "7") == (
        "Open the MLflow UI:  mlflow ui --backend-store-uri sqlite:////r/mlflow.db --host 127.0.0.1 --port 5000\n"
        f"  runs:   http://127.0.0.1:5000/{table}\n  charts: http://127.0.0.1:5000/{table}&compareRunsMode=CHART\n"
        "  (Group by > tag method compares methods across seeds; each run's summary.png plots its generations)")


def test_diagrams_are_the_figures_reliability_of_every_method_at_g_star(store, tmp_path):
    """`--diagrams` draws what `orchestrator.figures.reliability` draws (one drawing of reliability diagrams):
    each method's test diagram at its g*, as reported (raw, or after its T), of one seed."""
    import json

    import numpy as np

    from orchestrator.tracking import PlannedRun, TrialRun, ensure_experiment, sync_runs
    from trainables.plots import reliability_pair

    exp = ensure_experiment(store, "t", artifact_root=tmp_path / "artifacts")
    planned = [PlannedRun(f"isear-{m}-seed{s}", "fp", {"seed": str(s), "dataset": "isear", "method": m,
                                                        "emocal.ece": "ts" if m == "csd" else "raw"}, {})
               for m in ("csd", "ce") for s in (0, 1)]
    planned.append(PlannedRun("isear-llama3_8b_zs", "fp", {"seed": "0", "dataset": "isear", "method": "llama3_8b_zs",
                                                           "emocal.kind": "llm"}, {}))
    runs = sync_runs(store, exp, planned)
    rng = np.random.default_rng(0)
    pairs = {}
    for p in planned:
        gens, s = (1, 2) if p.tags["method"] == "csd" else (1,), int(p.tags["seed"])
        for g in gens:  # csd's seed mean of validation F1 is best at generation 2
            folder = tmp_path / "gen" / p.trial_key / str(g)
            folder.mkdir(parents=True)
            logits, labels = rng.normal(size=(40, 3)) * 3, rng.integers(0, 3, size=40)
            if p.tags["method"] != "llama3_8b_zs":  # an LLM logs no diagram
                pairs[(p.tags["method"], s, g)] = reliability_pair(logits, labels, 1 + g + s / 10,
                                                                   folder / "reliability_test.png")
            TrialRun(store, runs[p.trial_key], "fp").log_generation(g, {**BASE, "val_macro_f1": 60.0 + g}, folder)
    out = tmp_path / "figures" / "isear"  # made with its parents
    target = report.diagrams(store, "t", "isear", out)
    assert target == out / "reliability_isear.png" and target.is_file()
    drawn = json.loads(target.with_suffix(".json").read_text())
    assert drawn["title"] == "t: isear test set, seed 0, as reported at g*"
    # every method that ran but the LLM, sorted, of the smallest seed at its g*: ce raw, csd after its T
    assert drawn["panels"] == {"ce g1, raw": pairs[("ce", 0, 1)]["before"],
                               "csd g2, T = 3.00": pairs[("csd", 0, 2)]["after"]}
    # a seed and an order of methods asked for (one that has not run among them), into the same folder again
    target = report.diagrams(store, "t", "isear", out, seed=1, methods=["csd", "sd", "ce"])
    assert list(json.loads(target.with_suffix(".json").read_text())["panels"]) == ["csd g2, T = 3.10", "ce g1, raw"]
    with pytest.raises(SystemExit, match="no finished trials of dataset 'goemotions'"):
        report.diagrams(store, "t", "goemotions", tmp_path / "out3")


def test_the_command_line_prints_the_report_with_the_options_given(monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////r/mlflow.db")
    monkeypatch.setenv("COLUMNS", "400")  # --help on one line per option
    monkeypatch.setattr(report, "build_report", lambda *args: calls.append(("report", *args)) or "TABLES")
    monkeypatch.setattr(report, "diagrams", lambda *args, **kw: calls.append(("diagrams", *args, kw)) or "D.png")
    assert report.main(["exp"]) == 0
    assert capsys.readouterr().out == "TABLES\n"
    assert calls == [("report", "sqlite:////r/mlflow.db", "exp", None, None, SEED_MEAN)]
    calls.clear()
    assert report.main(["exp", "--out", "o", "--ood-percent", "10", "--pick", "per-seed", "--diagrams", "isear",
                        "--methods", "csd", "ce"]) == 0
    assert capsys.readouterr().out == "TABLES\ndiagrams: D.png\n"
    assert calls == [("report", "sqlite:////r/mlflow.db", "exp", "o", 10.0, PER_SEED),
                     ("diagrams", "sqlite:////r/mlflow.db", "exp", "isear", "o", {"methods": ["csd", "ce"]})]
    calls.clear()
    report.main(["exp", "--diagrams", "isear"])
    capsys.readouterr()
    assert calls[1] == ("diagrams", "sqlite:////r/mlflow.db", "exp", "isear", ".", {"methods": None})
    with pytest.raises(SystemExit):
        report.main(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert usage.startswith("usage: python -m orchestrator.report [-h]")
    assert (" NAME MLflow -> the paper's tables: Tables 1 and 2 (one generation per method), 11 and 12 (each). "
            "positional arguments: NAME the spec's name: its MLflow experiment and run folder ") in usage
    # each option with its help, in order (whitespace as the terminal's width makes it aside)
    assert usage.endswith(
        "--out DIR also write report.md, report.csv and report_generations.csv here "
        "--ood-percent P which OOD fine-tuning percentage to tabulate (default 3) "
        "--pick {seed-mean,per-seed} seed-mean: one generation per method, as the paper (default); per-seed: each seed's best "
        "--diagrams DATASET also put each method's reliability diagram for DATASET side by side (in --out or .) "
        "--methods METHOD [METHOD ...] with --diagrams: only these methods, in this order")


def test_the_llm_table_lists_the_llm_rows_that_ran_then_the_papers_for_reference():
    # one zero-shot LLM row the paper does not have, alone: no chain table for it; a spec without an OOD set
    # (no OOD metrics or answer counts)
    rows = [row({"trial": "isear-qwen_zs", "seed": 0, "dataset": "isear", "method": "qwen_zs", "kind": LLM,
             "generation": 1, "ece_kind": "raw", "pick": "best", "ood_percent": None, "test_macro_f1": 40.0,
             "test_weighted_f1": 41.0, "test_ece": 20.0, "test_unusable": 2.0, "test_answers": 50.0})]
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    assert text.endswith(
        "\n### isear: LLM baselines (Table 1 layout: ID test; Table 2 layout: OOD test without fine-tuning)\n\n"
        "Cells are mean±std over a row's prompts (few-shot: one seed per prompt; zero-shot: one greedy run). "
        "Unusable: answers that named no label, of all answers, scored as wrong with confidence 1/K (an answer with "
        "a label but no readable confidence keeps its label, with confidence 1/K; counted below).\n\n"
        "| method | paper row | prompts | ID F1 macro (weighted) | ID ECE | ID unusable | paper ID F1 (w) / ECE | "
        "OOD F1 macro (weighted) | OOD ECE | OOD unusable | paper OOD F1 (w) / ECE |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| qwen_zs |  | 1 | 40.00 (41.00) | 20.00 | 2/50 |  | n/a (n/a) | n/a | 0/0 |  |\n"
        "\nPer row, ID / OOD: answers with a label but no readable confidence; answers cut at max_new_tokens (all the "
        "new tokens used, no end), and of those the ones the cut left without an answer.\n\n"
        "- qwen_zs: no confidence 0 / 0; cut 0 / 0, without an answer 0 / 0\n"
        f"\n{report.FEW_SHOT_FOOTNOTE}\n"
        # the paper's rows, not run: the zero-shot ones give no std (one greedy run), the few-shot ones one over prompts
        + REFERENCE + LCL_NOT_RUN + "\n" + "".join(LLM_NOT_RUN.values()))


def test_a_contradiction_is_footnoted_only_where_its_method_and_dataset_are_shown():
    from orchestrator.paper_values import PAPER_CONTRADICTIONS

    ed = [changed(r, dataset="empathetic_dialogues", method="rand_mixup_csd") for r in rows_of("csd", CSD, "ts")]
    text = report.markdown(summarise(ed), per_generation(ed), skipped=0)
    note = next(f for f in PAPER_CONTRADICTIONS if f.startswith("OOD, rand_mixup_csd on empathetic_dialogues"))
    assert text.endswith(f"\n\nWhere the paper contradicts itself (its main tables against Tables 11/12):\n\n- {note}\n")
    isear = rows_of("csd", CSD, "ts")  # a dataset after it, without contradictions: the footnote stays
    assert f"- {note}\n" in report.markdown(summarise(ed + isear), per_generation(ed + isear), skipped=0)
    for rows in ([changed(r, dataset="isear") for r in ed], [changed(r, method="ea_mixup_csd") for r in ed]):
        assert "contradicts itself" not in report.markdown(summarise(rows), per_generation(rows), skipped=0)


def test_per_seed_pick_of_a_last_generation_preset_takes_each_seeds_last():
    # seeds listed out of order, seed 2 one generation behind: each seed's last generation, named in seed order
    rows = [r for r in rows_of("csd", {s: CSD[s] for s in (2, 0, 1)}, "ts", pick="last")
            if not (r.seed == 2 and r.generation == 3)]
    s = by_method(summarise(rows, pick=PER_SEED))["csd"]
    assert s.generation == "per seed 3,3,2"
    assert s.cells["id_macro_f1"].mean == pytest.approx((50 + 54 + 47) / 3)  # seed 0 and 1 at g3, seed 2 at g2


def test_id_table_header_and_per_generation_rows_of_any_multi_generation_method():
    # sd with two generations; a method the paper has no per-generation row for, with five; on two datasets,
    # the first of which has only an LLM row
    sd = rows_of("sd", {s: {g: CSD[s][g] for g in (1, 2)} for s in CSD}, "raw")
    mine = rows_of("my_kd", {s: {**CSD[s], 4: CSD[s][3], 5: CSD[s][3]} for s in CSD}, "ts")
    llm = [row({"trial": "emo-qwen_zs", "seed": 0, "dataset": "emo", "method": "qwen_zs", "kind": LLM,
            "generation": 1, "ece_kind": "raw", "pick": "best", "ood_percent": None, "test_macro_f1": 40.0,
            "test_weighted_f1": 41.0, "test_ece": 20.0, "ood_macro_f1": 30.0, "ood_weighted_f1": 31.0, "ood_ece": 10.0,
            "test_unusable": 2.0, "test_answers": 50.0, "ood_unusable": 1.0, "ood_answers": 60.0})]
    csd = rows_of("csd", {s: {**CSD[s], 4: CSD[s][3], 5: CSD[s][3]} for s in CSD}, "ts")
    rows = sd + mine + llm + csd
    text = report.markdown(summarise(rows), per_generation(rows), skipped=0)
    assert ("\n### isear: ID test (Table 1 layout)\n\n| method | encoder | seeds | gen | F1 macro (weighted) | ECE | "
            "paper F1 macro (weighted) / ECE | paper gen |\n|---|---|---|---|---|---|---|---|\n| csd |") in text
    table_11 = text.split("### isear: ID test per generation")[1].split("###")[0]
    assert "| method | gen 1 | gen 2 | gen 3 | gen 4 | gen 5 |\n|---|---|---|---|---|---|\n" in table_11
    # g* = 3 for csd and my_kd (validation 66.33, then 66.33 again: the earliest), 2 for sd (65.67)
    assert ("| my_kd | 41.00±1.00 / 9.00±0.00 | 46.00±1.00 / 8.00±0.00 | **54.00±4.00 / 5.00±2.00** | "
            "54.00±4.00 / 5.00±2.00 | 54.00±4.00 / 5.00±2.00 |\n") in table_11
    assert "| sd | 41.00±1.00 / 20.00±0.00 | **46.00±1.00 / 20.00±0.00** |  |  |  |\n" in table_11
    # the paper's four generations, a blank under our fifth
    assert "| csd (paper) | 75.60±0.4 / 4.00±0.3 | 75.76±0.4 / 4.15±0.6 | **76.29±0.3 / 3.57±0.7** | 75.93±0.4 / 4.03±0.4 |  |\n" in table_11
    assert "my_kd (paper)" not in text


def test_one_seed_shows_no_spread_and_no_numpy_warning():
    import warnings

    rows = rows_of("ce", {0: {1: (60, 40, 9, 4, 60, 6, 50)}}, "raw")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Degrees of freedom <= 0" on a one-value std would fail here
        s = by_method(summarise(rows))["ce"]
    assert s.cells["id_macro_f1"].mean == 40 and math.isnan(s.cells["id_macro_f1"].std)
