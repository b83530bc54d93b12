"""MLflow -> the paper's tables: Tables 1 and 2 (one generation per method), 11 and 12 (each).

    emocal report NAME [--runs DIR] [--tracking-uri URI] [--out DIR] [--ood-percent 3] [--pick seed-mean|per-seed]
    (= python -m orchestrator.report ...; the store: orchestrator/locations.py)

The paper reports each (dataset, method) at ONE generation, so every KD cell of its Tables 1-4,
8 and 9 equals one column of Tables 11/12, mean and std alike. The report does the same: g* is
the generation with the best seed-mean ID validation macro F1 (ties: the earliest; the last for
presets that report their last generation), and the ID cell, the OOD cell after fine-tuning and
the OOD cell without fine-tuning are all mean ± std over seeds at g*. `--pick per-seed` gives
each seed its own best generation instead (named as such in the tables; it matches no column of
the paper's and widens the std). F1 is "macro (weighted)"; ECE in percent, after the
generation's own validation-optimal T for CSD-family and "+ TS" methods, raw otherwise
(docs/method.md, Reporting). The paper's value (mean ± std, and its generation) stands
beside each cell where it has one. Each row names the encoder it ran on (a method may carry its
own: electra_lcl); the paper's baselines outside the chain (`BASELINE_ROWS`) have a row in every
dataset's Table 1 layout, "n/a" where nothing has run.

Only the experiment's current runs are read: runs of a changed plan or of trials no longer in
the spec are tagged superseded by the sweep (orchestrator/tracking.py), and the report says
how many it skipped.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # parse in the light CLI first: `--help` then imports no MLflow
    from orchestrator.cli import run_module

    sys.exit(run_module("report"))

import argparse
import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from orchestrator.paper_values import (ID_PER_GENERATION, ID_STD, ID_TABLE, LLM_ID_STD, LLM_ID_TABLE, LLM_OOD_STD,
                                       LLM_OOD_TABLE, OOD_PER_GENERATION, OOD_STD, OOD_TABLE, PAPER_CONTRADICTIONS,
                                       PAPER_GENERATION)
from orchestrator.tracking import CURRENT, KIND_TAG, STATUS_TAG
from trainables.llm.methods import LLM_PRESETS
from trainables.methods.registry import get_method

ECE_TAG, PICK_TAG = "emocal.ece", "emocal.report_generation"
ID_METRICS = ("val_macro_f1", "test_macro_f1", "test_weighted_f1", "test_ece", "test_ece_ts")
OOD_BASE = ("ood_macro_f1", "ood_weighted_f1", "ood_ece")
LLM_COUNTS = ("test_unusable", "test_answers", "ood_unusable", "ood_answers")  # summed over a row's prompts
LLM = "llm"
SEED_MEAN, PER_SEED = "seed-mean", "per-seed"
# the paper's Table 1 rows outside the chain: always shown beside the paper's value, n/a until run
BASELINE_ROWS = ("electra_lcl",)
# summary column -> the row's metric (id_ece is resolved per method: raw or scaled)
CELLS = {"id_macro_f1": "test_macro_f1", "id_weighted_f1": "test_weighted_f1", "id_ece": None,
         "val_macro_f1": "val_macro_f1",
         "ood_ft_macro_f1": "ft_macro_f1", "ood_ft_weighted_f1": "ft_weighted_f1", "ood_ft_ece": "ft_ece",
         "ood_noft_macro_f1": "ood_macro_f1", "ood_noft_weighted_f1": "ood_weighted_f1", "ood_noft_ece": "ood_ece"}


def _histories(client, run_id: str, names) -> dict[int, dict[str, float]]:
    by_gen: dict[int, dict[str, float]] = defaultdict(dict)
    for name in names:
        for m in client.get_metric_history(run_id, name):
            by_gen[m.step][name] = m.value
    return by_gen


def collect(uri: str, experiment: str, ood_percent: float | None = None) -> tuple[list[dict], int]:
    """One row per (current trial run, logged generation); and how many runs were skipped."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"no MLflow experiment {experiment!r} at {uri}")
    rows, skipped = [], 0
    for run in client.search_runs([exp.experiment_id], max_results=50000):
        tags = run.data.tags
        if "method" not in tags:
            continue
        if tags.get(STATUS_TAG) != CURRENT:  # superseded, or made by an emocal without plan fingerprints
            skipped += 1
            continue
        ood_keys = sorted(k for k in run.data.metrics if k.startswith("ood_ft") and k.endswith("_macro_f1"))
        percents = sorted(float(k[len("ood_ft"):-len("_macro_f1")]) for k in ood_keys)
        p = ood_percent if ood_percent is not None else (3.0 if 3.0 in percents else (percents[len(percents) // 2] if percents else None))
        ft = tuple(f"ood_ft{p:g}_{m}" for m in ("macro_f1", "weighted_f1", "ece")) if p is not None else ()
        kind = tags.get(KIND_TAG, "chain")
        names = ID_METRICS + OOD_BASE + (LLM_COUNTS if kind == LLM else ft)
        for gen, metrics in sorted(_histories(client, run.info.run_id, names).items()):
            row = {"trial": run.info.run_name, "seed": int(tags.get("seed", -1)), "dataset": tags["dataset"],
                   "method": tags["method"], "kind": kind, "generation": gen, "ece_kind": tags.get(ECE_TAG, "raw"),
                   "pick": tags.get(PICK_TAG, "best"), "ood_percent": p,
                   "encoder": run.data.params.get("model", ""), **metrics}
            for src, dst in zip(ft, ("ft_macro_f1", "ft_weighted_f1", "ft_ece")):
                row[dst] = metrics.get(src, math.nan)
            rows.append(row)
    return rows, skipped


def _groups(rows: list[dict]) -> dict[tuple[str, str], dict[str, dict[int, dict]]]:
    """(dataset, method) -> trial -> generation -> row."""
    out: dict[tuple[str, str], dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        out[(r["dataset"], r["method"])][r["trial"]][r["generation"]] = r
    return out


def _value(r: dict, key: str | None) -> float:
    if key is None:  # id_ece: after TS for the methods reported so
        key = "test_ece_ts" if r["ece_kind"] == "ts" else "test_ece"
    v = r.get(key)
    return math.nan if v is None else float(v)


def _ms(values) -> tuple[float, float]:
    """Mean and sample std (ddof 1) over seeds; std is NaN for one seed."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


def reported_generation(trials: dict[str, dict[int, dict]]) -> int:
    """g* of one (dataset, method): the generation with the best seed-mean ID validation macro F1
    (ties: the earliest), among the generations every seed has finished; the last one for
    presets that report their last generation."""
    common = sorted(set.intersection(*(set(gens) for gens in trials.values())))
    if not common:
        return min(min(gens) for gens in trials.values())
    first = next(iter(trials.values()))[common[0]]
    if first["pick"] == "last":
        return common[-1]
    means = {g: _ms(_value(gens[g], "val_macro_f1") for gens in trials.values())[0] for g in common}
    return max(common, key=lambda g: (-math.inf if math.isnan(means[g]) else means[g], -g))


def summarise(rows: list[dict], pick: str = SEED_MEAN) -> list[dict]:
    """One row per (dataset, method): the reported generation(s) and mean/std of every cell."""
    if pick not in (SEED_MEAN, PER_SEED):
        raise ValueError(f"pick must be {SEED_MEAN} or {PER_SEED}, not {pick!r}")
    out = []
    for (dataset, method), trials in sorted(_groups(rows).items()):
        if pick == SEED_MEAN:
            g = reported_generation(trials)
            chosen = [gens[g] for gens in trials.values() if g in gens]
            generation = str(g)
        else:
            chosen = []
            for gens in trials.values():
                ordered = [gens[k] for k in sorted(gens)]
                chosen.append(ordered[-1] if ordered[0]["pick"] == "last" else
                              max(ordered, key=lambda r: (_value(r, "val_macro_f1"), -r["generation"])))
            chosen.sort(key=lambda r: r["seed"])
            generation = "per seed " + ",".join(str(r["generation"]) for r in chosen)
        row = {"dataset": dataset, "method": method, "encoder": chosen[0].get("encoder", ""),
               "seeds": len(chosen), "generation": generation,
               "generations_logged": max(max(gens) for gens in trials.values()), "pick": pick}
        for name, key in CELLS.items():
            row[name], row[name + "_std"] = _ms(_value(r, key) for r in chosen)
        row["ood_percent"] = chosen[0]["ood_percent"]
        row["kind"] = chosen[0].get("kind", "chain")
        if row["kind"] == LLM:
            row.update({name: int(sum(r.get(name, 0) for r in chosen)) for name in LLM_COUNTS})
        row.update(_paper_cells(dataset, method))
        out.append(row)
    return out


def per_generation(rows: list[dict]) -> list[dict]:
    """Tables 11 and 12: mean/std over seeds of every (dataset, method, generation)."""
    out = []
    for (dataset, method), trials in sorted(_groups(rows).items()):
        g_star = reported_generation(trials)
        for g in sorted({g for gens in trials.values() for g in gens}):
            chosen = [gens[g] for gens in trials.values() if g in gens]
            row = {"dataset": dataset, "method": method, "generation": g, "seeds": len(chosen),
                   "reported": g == g_star}
            for name in ("id_macro_f1", "id_ece", "val_macro_f1", "ood_ft_macro_f1", "ood_ft_ece"):
                row[name], row[name + "_std"] = _ms(_value(r, CELLS[name]) for r in chosen)
            out.append(row)
    return out


def _paper_cell(table, std, key: str, dataset: str) -> str:
    """The paper's "F1 macro (weighted) / ECE" with stds where it gives them; "" where it has no such row."""
    v, s = table.get(key, {}).get(dataset), std.get(key, {}).get(dataset)
    if v is None:
        return ""
    s = s or (math.nan,) * 3
    return f"{_paper_pm(v[0], s[0])} ({_paper_pm(v[1], s[1])}) / {_paper_pm(v[2], s[2])}"


def _paper_cells(dataset: str, method: str) -> dict[str, str]:
    def cell(table, std, key) -> str:
        return _paper_cell(table, std, key, dataset)

    if method in LLM_ID_TABLE:
        return {"paper_id": cell(LLM_ID_TABLE, LLM_ID_STD, method), "paper_ood_ft": "",
                "paper_ood_noft": cell(LLM_OOD_TABLE, LLM_OOD_STD, method), "paper_generation": ""}
    gen = PAPER_GENERATION["id"].get(method, {}).get(dataset)
    return {"paper_id": cell(ID_TABLE, ID_STD, method), "paper_ood_ft": cell(OOD_TABLE, OOD_STD, method),
            "paper_ood_noft": cell(OOD_TABLE, OOD_STD, "ce_no_ft") if method == "ce" else "",
            "paper_generation": gen or ""}


def _baselines_not_run(dataset: str, rows: list[dict]) -> list[str]:
    """The paper's baseline rows with a value for `dataset` that no current run has reported."""
    ran = {r["method"] for r in rows}
    return [m for m in BASELINE_ROWS if m not in ran and dataset in ID_TABLE.get(m, {})]


def _pm(mean: float, std: float, digits: int = 2) -> str:
    """mean±std; the paper's stds have one decimal, ours two; one seed has no spread to show."""
    if mean is None or math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f}±{std:.{digits}f}"


def _paper_pm(mean: float, std: float) -> str:
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f}±{std:.1f}"


def _gen_label(r: dict) -> str:
    return r["generation"] if r["pick"] == PER_SEED else f"g{r['generation']}"


def _unusable(r: dict, split: str) -> str:
    return f"{r[split + '_unusable']}/{r[split + '_answers']}"


def _llm_tables(buf: io.StringIO, dataset: str, rows: list[dict]) -> None:
    """The LLM rows of Tables 1 and 2 for one dataset: every paper row (n/a where it has not run),
    then any other LLM row that ran; unusable answers (all prompts together) beside each cell."""
    ran = {r["method"]: r for r in rows}
    methods = list(LLM_PRESETS) + sorted(set(ran) - set(LLM_PRESETS))
    buf.write(f"\n### {dataset}: LLM baselines (Table 1 layout: ID test; Table 2 layout: OOD test without "
              "fine-tuning)\n\nCells are mean±std over a row's prompts (few-shot: one seed per prompt; "
              "zero-shot: one greedy run). Unusable: answers that named no label or gave no readable confidence, "
              "of all answers, scored as wrong with confidence 1/K.\n\n")
    buf.write("| method | paper row | prompts | ID F1 macro (weighted) | ID ECE | ID unusable | paper ID F1 (w) / ECE | "
              "OOD F1 macro (weighted) | OOD ECE | OOD unusable | paper OOD F1 (w) / ECE |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n")
    for method in methods:
        r = ran.get(method)
        paper = _paper_cells(dataset, method)
        row = LLM_PRESETS[method].paper_row if method in LLM_PRESETS else ""
        if r is None:
            buf.write(f"| {method} | {row} | 0 | n/a | n/a | n/a | {paper['paper_id']} | n/a | n/a | n/a | "
                      f"{paper['paper_ood_noft']} |\n")
            continue
        buf.write(f"| {method} | {row} | {r['seeds']} | "
                  f"{_pm(r['id_macro_f1'], r['id_macro_f1_std'])} ({_pm(r['id_weighted_f1'], r['id_weighted_f1_std'])}) | "
                  f"{_pm(r['id_ece'], r['id_ece_std'])} | {_unusable(r, 'test')} | {paper['paper_id']} | "
                  f"{_pm(r['ood_noft_macro_f1'], r['ood_noft_macro_f1_std'])} "
                  f"({_pm(r['ood_noft_weighted_f1'], r['ood_noft_weighted_f1_std'])}) | "
                  f"{_pm(r['ood_noft_ece'], r['ood_noft_ece_std'])} | {_unusable(r, 'ood')} | {paper['paper_ood_noft']} |\n")


def _markdown(summary: list[dict], per_gen: list[dict], skipped: int) -> str:
    buf = io.StringIO()
    pick = summary[0]["pick"] if summary else SEED_MEAN
    rule = ("g* = the generation with the best seed-mean ID validation macro F1 (ties: the earliest), one per "
            "(dataset, method), as the paper reports" if pick == SEED_MEAN else
            "each seed's own best generation by ID validation macro F1 (per-seed pick: matches no column of the paper's)")
    buf.write(f"\nReported generation: {rule}. Cells are mean±std over seeds (sample std); the paper's "
              "values (mean±std over 5 seeds, roberta-base; electra_lcl: ELECTRA-base) stand beside them with the "
              "generation they come from.\n")
    if skipped:
        buf.write(f"\nSkipped {skipped} MLflow run(s) that are not current (superseded by a changed plan, trials no "
                  "longer in the spec, or made by an emocal without plan fingerprints).\n")
    footnotes: list[str] = []
    for dataset in sorted({r["dataset"] for r in summary}):
        _llm_tables(buf, dataset, [r for r in summary if r["dataset"] == dataset and r.get("kind") == LLM])
        rows = [r for r in summary if r["dataset"] == dataset and r.get("kind") != LLM]
        if not rows:
            continue
        buf.write(f"\n### {dataset}: ID test (Table 1 layout)\n\n")
        buf.write("| method | encoder | seeds | gen | F1 macro (weighted) | ECE | paper F1 macro (weighted) / ECE | "
                  "paper gen |\n|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            buf.write(f"| {r['method']} | {r['encoder']} | {r['seeds']} | {_gen_label(r)} | "
                      f"{_pm(r['id_macro_f1'], r['id_macro_f1_std'])} ({_pm(r['id_weighted_f1'], r['id_weighted_f1_std'])}) | "
                      f"{_pm(r['id_ece'], r['id_ece_std'])} | {r['paper_id']} | "
                      f"{'g' + str(r['paper_generation']) if r['paper_generation'] else ''} |\n")
        for method in _baselines_not_run(dataset, rows):
            buf.write(f"| {method} | {get_method(method).model} | 0 | n/a | n/a (n/a) | n/a | "
                      f"{_paper_cells(dataset, method)['paper_id']} |  |\n")
        p = rows[0]["ood_percent"]
        if any(not math.isnan(r["ood_noft_macro_f1"]) for r in rows):
            title = f"after {p:g}% fine-tuning, and without" if p is not None else "without fine-tuning"
            buf.write(f"\n### {dataset}: OOD test (Table 2 layout; {title}; same generation as the ID table)\n\n")
            buf.write("| method | gen | FT: F1 macro (weighted) | FT: ECE | paper FT: F1 (w) / ECE | "
                      "no FT: F1 macro (weighted) | no FT: ECE | paper no FT (RoBERTa w/o finetuning) |\n"
                      "|---|---|---|---|---|---|---|---|\n")
            for r in rows:
                buf.write(f"| {r['method']} | {_gen_label(r)} | "
                          f"{_pm(r['ood_ft_macro_f1'], r['ood_ft_macro_f1_std'])} "
                          f"({_pm(r['ood_ft_weighted_f1'], r['ood_ft_weighted_f1_std'])}) | "
                          f"{_pm(r['ood_ft_ece'], r['ood_ft_ece_std'])} | {r['paper_ood_ft']} | "
                          f"{_pm(r['ood_noft_macro_f1'], r['ood_noft_macro_f1_std'])} "
                          f"({_pm(r['ood_noft_weighted_f1'], r['ood_noft_weighted_f1_std'])}) | "
                          f"{_pm(r['ood_noft_ece'], r['ood_noft_ece_std'])} | {r['paper_ood_noft']} |\n")
        gens = [g for g in per_gen if g["dataset"] == dataset]
        methods = sorted({g["method"] for g in gens if g["generation"] > 1})
        if methods:
            top = max([g["generation"] for g in gens] + [len(ID_PER_GENERATION[m][dataset]) for m in methods
                                                          if dataset in ID_PER_GENERATION.get(m, {})])
            for table, (f1, ece, paper, label) in (("11", ("id_macro_f1", "id_ece", ID_PER_GENERATION, "ID test")),
                                                  ("12", ("ood_ft_macro_f1", "ood_ft_ece", OOD_PER_GENERATION,
                                                          f"OOD after {p:g}% fine-tuning" if p is not None else "OOD"))):
                if all(math.isnan(g[f1]) for g in gens):  # e.g. no OOD fine-tuning: no Table 12
                    continue
                buf.write(f"\n### {dataset}: {label} per generation (Table {table} layout: macro F1 / ECE; "
                          "** marks the reported generation g*)\n\n")
                buf.write("| method | " + " | ".join(f"gen {i}" for i in range(1, top + 1)) + " |\n")
                buf.write("|---" * (1 + top) + "|\n")
                for method in methods:
                    cells = {g["generation"]: g for g in gens if g["method"] == method}
                    out = []
                    for i in range(1, top + 1):
                        c = cells.get(i)
                        text = f"{_pm(c[f1], c[f1 + '_std'])} / {_pm(c[ece], c[ece + '_std'])}" if c else ""
                        out.append(f"**{text}**" if c and c["reported"] else text)
                    buf.write(f"| {method} | " + " | ".join(out) + " |\n")
                    theirs = paper.get(method, {}).get(dataset)
                    if theirs:
                        g_paper = PAPER_GENERATION["id" if table == "11" else "ood"][method][dataset]
                        cols = [f"{_paper_pm(t[0], t[1])} / {_paper_pm(t[2], t[3])}" for t in theirs]
                        cols = [f"**{c}**" if i + 1 == g_paper else c for i, c in enumerate(cols)]
                        buf.write(f"| {method} (paper) | " + " | ".join(cols + [""] * (top - len(cols))) + " |\n")
        footnotes += [f for f in PAPER_CONTRADICTIONS if f" on {dataset} " in f and
                      any(f" {m} on " in f for m in {r['method'] for r in rows})]
    if footnotes:
        buf.write("\nWhere the paper contradicts itself (its main tables against Tables 11/12):\n\n")
        buf.writelines(f"- {f}\n" for f in footnotes)
    return buf.getvalue()


def build_report(uri: str, experiment: str, out_dir: str | Path | None = None, ood_percent: float | None = None,
                 pick: str = SEED_MEAN) -> str:
    rows, skipped = collect(uri, experiment, ood_percent)
    if not rows:
        return f"no finished generations in experiment {experiment!r} yet" + (
            f" (skipped {skipped} run(s) that are not current)" if skipped else "")
    summary, per_gen = summarise(rows, pick), per_generation(rows)
    text = _markdown(summary, per_gen, skipped)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(f"# {experiment}\n{text}")
        for name, table in (("report.csv", summary), ("report_generations.csv", per_gen)):
            with open(out / name, "w", newline="") as f:
                # LLM rows add their unusable-answer counts: every row's columns, blank where a row has none
                writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in table for k in row)), restval="")
                writer.writeheader()
                writer.writerows(table)
    return text


def diagrams(uri: str, experiment: str, dataset: str, out_dir: str | Path, seed: int | None = None,
             methods: list[str] | None = None) -> Path:
    """Each method's reliability diagram at its reported generation g* (test, before/after TS)
    for one dataset, side by side in one PNG (first seed unless `seed` is given)."""
    from mlflow import MlflowClient

    from trainables.plots import side_by_side

    client = MlflowClient(uri)
    rows, _ = collect(uri, experiment)
    rows = [r for r in rows if r["dataset"] == dataset and r.get("kind") != LLM  # an LLM states one confidence: no diagram
            and (methods is None or r["method"] in methods)]
    if not rows:
        raise SystemExit(f"no finished trials of dataset {dataset!r} in experiment {experiment!r}")
    g_star = {(d, m): reported_generation(trials) for (d, m), trials in _groups(rows).items()}
    chosen: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        if (seed is None or r["seed"] == seed) and r["method"] not in chosen and r["generation"] == g_star[(dataset, r["method"])]:
            chosen[r["method"]] = r
    exp = client.get_experiment_by_name(experiment)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for method in (methods or sorted(chosen)):
        if method not in chosen:
            continue
        r = chosen[method]
        run = client.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{r['trial']}' and "
                                                                    f"tags.`{STATUS_TAG}` = '{CURRENT}'")[0]
        local = client.download_artifacts(run.info.run_id, f"gen{r['generation']}/reliability_test.png", str(out / method))
        images[f"{method} (seed {r['seed']}, gen {r['generation']})"] = local
    target = out / f"reliability_{dataset}.png"
    side_by_side(images, target, title=f"{experiment}: {dataset}, test reliability before / after TS", columns=1)
    return target


def runs_view(experiment_id: str, chart: bool = False) -> str:
    """The UI's runs view of an experiment, showing current runs only, sorted by name (so a
    method's seeds sit together); its URL state carries the filter, which cannot be preset."""
    from urllib.parse import quote

    query = {"searchFilter": f"tags.`{STATUS_TAG}` = '{CURRENT}'", "orderByKey": "tags.`mlflow.runName`",
             "orderByAsc": "true"}
    if chart:
        query["compareRunsMode"] = "CHART"
    return f"#/experiments/{experiment_id}/runs?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


def mlflow_ui_hint(uri: str, experiment_id: str) -> str:
    """How to open the experiment's current runs in the MLflow UI (table, and charts per generation)."""
    table, charts = runs_view(experiment_id), runs_view(experiment_id, chart=True)
    if uri.startswith(("http://", "https://")):
        base = uri.rstrip("/")
        return f"MLflow runs:   {base}/{table}\nMLflow charts: {base}/{charts}"
    return (f"Open the MLflow UI:  mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000\n"
            f"  runs:   http://127.0.0.1:5000/{table}\n  charts: http://127.0.0.1:5000/{charts}\n"
            "  (Group by > tag method compares methods across seeds; each run's summary.png plots its generations)")


def run(args: argparse.Namespace) -> int:
    """`emocal report NAME`: the tables printed (and with --out, written), from the store the run folder names."""
    from orchestrator.locations import resolve_tracking_uri, run_folder

    uri = resolve_tracking_uri(args.tracking_uri, run_folder(args.runs, args.experiment), must_exist=True)
    print(build_report(uri, args.experiment, args.out, args.ood_percent, args.pick))
    if args.diagrams:
        print(f"diagrams: {diagrams(uri, args.experiment, args.diagrams, args.out or '.', methods=args.methods)}")
    return 0


def main(argv=None) -> int:
    """`python -m orchestrator.report ...` (the parser is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("report", argv)
