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
(docs/method.md, Reporting). The numbers come from orchestrator/results.py; this module lays
them out. The paper's value (mean ± std, and its generation) stands beside each cell where it
has one. Each row names the encoder it ran on (a method may carry its own: electra_lcl). Rows
are shown for what the sweep ran; the paper's rows outside the chain that it did not run (the
baselines `BASELINE_ROWS` and the LLM rows) are listed with the paper's values in a short
reference table per dataset, so the comparison stays in view.

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
from pathlib import Path

from orchestrator.mlflow_ui import mlflow_ui_hint, runs_view  # noqa: F401 - their old import path (sweep.py)
from orchestrator.paper_values import (ID_PER_GENERATION, ID_STD, ID_TABLE, LLM_ID_STD, LLM_ID_TABLE, LLM_OOD_STD,
                                       LLM_OOD_TABLE, OOD_PER_GENERATION, OOD_STD, OOD_TABLE, PAPER_CONTRADICTIONS,
                                       PAPER_GENERATION)
from orchestrator.results import (LLM, PER_SEED, SEED_MEAN, GenerationResult, MeanStd, MethodResult,  # noqa: F401
                                  collect, per_generation, reported_generation, summarise)
from trainables.llm.methods import LLM_PRESETS
from trainables.methods.registry import get_method

# the paper's Table 1 rows outside the chain: in the reference table beside the paper's value until run
BASELINE_ROWS = ("electra_lcl",)


def _paper_cell(table, std, key: str, dataset: str) -> str:
    """The paper's "F1 macro (weighted) / ECE" with stds where it gives them; "" where it has no such row."""
    v, s = table.get(key, {}).get(dataset), std.get(key, {}).get(dataset)
    if v is None:
        return ""
    s = s or (math.nan,) * 3
    return f"{_paper_pm(v[0], s[0])} ({_paper_pm(v[1], s[1])}) / {_paper_pm(v[2], s[2])}"


def paper_cells(dataset: str, method: str) -> dict[str, str]:
    """The paper's cells of a (dataset, method): ID, OOD after fine-tuning, OOD without, and its generation."""
    def cell(table, std, key) -> str:
        return _paper_cell(table, std, key, dataset)

    if method in LLM_ID_TABLE:
        return {"paper_id": cell(LLM_ID_TABLE, LLM_ID_STD, method), "paper_ood_ft": "",
                "paper_ood_noft": cell(LLM_OOD_TABLE, LLM_OOD_STD, method), "paper_generation": ""}
    gen = PAPER_GENERATION["id"].get(method, {}).get(dataset)
    return {"paper_id": cell(ID_TABLE, ID_STD, method), "paper_ood_ft": cell(OOD_TABLE, OOD_STD, method),
            "paper_ood_noft": cell(OOD_TABLE, OOD_STD, "ce_no_ft") if method == "ce" else "",
            "paper_generation": gen or ""}


def _not_run(dataset: str, ran: set[str]) -> list[str]:
    """The paper's rows outside the chain (baselines, then LLM rows) with a value for `dataset` that no
    current run has reported."""
    rows = [m for m in BASELINE_ROWS if dataset in ID_TABLE.get(m, {})]
    rows += [m for m, preset in LLM_PRESETS.items() if preset.paper_row and dataset in LLM_ID_TABLE.get(m, {})]
    return [m for m in rows if m not in ran]


def format_pm(mean: float, std: float, digits: int = 2) -> str:
    """mean±std; the paper's stds have one decimal, ours two; one seed has no spread to show."""
    if mean is None or math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" if std is None or math.isnan(std) else f"{mean:.{digits}f}±{std:.{digits}f}"


def _pm(cell: MeanStd) -> str:
    return format_pm(*cell)


def _f1_cell(r: MethodResult | GenerationResult, prefix: str) -> str:
    """One split's "macro (weighted)" F1 cell."""
    return f"{_pm(r.cells[prefix + '_macro_f1'])} ({_pm(r.cells[prefix + '_weighted_f1'])})"


def _paper_pm(mean: float, std: float) -> str:
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f}±{std:.1f}"


def _gen_label(r: MethodResult) -> str:
    return r.generation if r.pick == PER_SEED else f"g{r.generation}"


def _unusable(r: MethodResult, split: str) -> str:
    return f"{r.counts[split + '_unusable']}/{r.counts[split + '_answers']}"


# docs/method.md, LLM baselines: the paper does not say where its few-shot examples come from
FEW_SHOT_FOOTNOTE = ("Few-shot rows draw each prompt's 2 examples per class from the ID training split and use the "
                     "same examples for the OOD test texts (the paper does not say which it used); a row with "
                     "`examples_from: ood_pool` draws the OOD test prompts' examples from the OOD dataset's pool "
                     "(its MLflow params say which).")


def _llm_tables(buf: io.StringIO, dataset: str, rows: list[MethodResult]) -> None:
    """The LLM rows that ran of Tables 1 and 2 for one dataset, the paper's first; unusable answers
    (all prompts together) beside each cell."""
    ran = {r.method: r for r in rows}
    methods = [m for m in LLM_PRESETS if m in ran] + sorted(set(ran) - set(LLM_PRESETS))
    buf.write(f"\n### {dataset}: LLM baselines (Table 1 layout: ID test; Table 2 layout: OOD test without "
              "fine-tuning)\n\nCells are mean±std over a row's prompts (few-shot: one seed per prompt; "
              "zero-shot: one greedy run). Unusable: answers that named no label, of all answers, scored as wrong "
              "with confidence 1/K (an answer with a label but no readable confidence keeps its label, with "
              "confidence 1/K; counted below).\n\n")
    buf.write("| method | paper row | prompts | ID F1 macro (weighted) | ID ECE | ID unusable | paper ID F1 (w) / ECE | "
              "OOD F1 macro (weighted) | OOD ECE | OOD unusable | paper OOD F1 (w) / ECE |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n")
    for method in methods:
        r = ran[method]
        paper = paper_cells(dataset, method)
        row = LLM_PRESETS[method].paper_row if method in LLM_PRESETS else ""
        buf.write(f"| {method} | {row} | {r.seeds} | {_f1_cell(r, 'id')} | {_pm(r.cells['id_ece'])} | "
                  f"{_unusable(r, 'test')} | {paper['paper_id']} | {_f1_cell(r, 'ood_noft')} | "
                  f"{_pm(r.cells['ood_noft_ece'])} | {_unusable(r, 'ood')} | {paper['paper_ood_noft']} |\n")
    buf.write("\nPer row, ID / OOD: answers with a label but no readable confidence; answers cut at max_new_tokens "
              "(all the new tokens used, no end), and of those the ones the cut left without an answer.\n\n")
    for method in methods:
        c = ran[method].counts
        buf.write(f"- {method}: no confidence {c.get('test_bad_confidence', 0)} / {c.get('ood_bad_confidence', 0)}; "
                  f"cut {c.get('test_cut', 0)} / {c.get('ood_cut', 0)}, without an answer "
                  f"{c.get('test_cut_no_answer', 0)} / {c.get('ood_cut_no_answer', 0)}\n")
    buf.write(f"\n{FEW_SHOT_FOOTNOTE}\n")


def _reference_table(buf: io.StringIO, dataset: str, methods: list[str]) -> None:
    """The paper's rows this sweep did not run, with the paper's values only."""
    buf.write(f"\n### {dataset}: the paper's rows not run here (its values, for reference)\n\n"
              "| method | model | paper ID F1 macro (weighted) / ECE | paper OOD F1 macro (weighted) / ECE (LLMs: without "
              "fine-tuning) |\n"
              "|---|---|---|---|\n")
    for method in methods:
        paper = paper_cells(dataset, method)
        model = LLM_PRESETS[method].model if method in LLM_PRESETS else get_method(method).model
        buf.write(f"| {method} | {model} | {paper['paper_id']} | {paper['paper_ood_ft'] or paper['paper_ood_noft']} |\n")


def _chain_tables(buf: io.StringIO, dataset: str, rows: list[MethodResult], per_gen: list[GenerationResult]) -> None:
    """Tables 1 and 2 (ID and OOD at g*), 11 and 12 (per generation) of one dataset's chain methods."""
    buf.write(f"\n### {dataset}: ID test (Table 1 layout)\n\n")
    buf.write("| method | encoder | seeds | gen | F1 macro (weighted) | ECE | paper F1 macro (weighted) / ECE | "
              "paper gen |\n|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        paper = paper_cells(dataset, r.method)
        buf.write(f"| {r.method} | {r.encoder} | {r.seeds} | {_gen_label(r)} | {_f1_cell(r, 'id')} | "
                  f"{_pm(r.cells['id_ece'])} | {paper['paper_id']} | "
                  f"{'g' + str(paper['paper_generation']) if paper['paper_generation'] else ''} |\n")
    p = rows[0].ood_percent
    if any(not math.isnan(r.cells["ood_noft_macro_f1"].mean) for r in rows):
        title = f"after {p:g}% fine-tuning, and without" if p is not None else "without fine-tuning"
        buf.write(f"\n### {dataset}: OOD test (Table 2 layout; {title}; same generation as the ID table)\n\n")
        buf.write("| method | gen | FT: F1 macro (weighted) | FT: ECE | paper FT: F1 (w) / ECE | "
                  "no FT: F1 macro (weighted) | no FT: ECE | paper no FT (RoBERTa w/o finetuning) |\n"
                  "|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            paper = paper_cells(dataset, r.method)
            buf.write(f"| {r.method} | {_gen_label(r)} | {_f1_cell(r, 'ood_ft')} | {_pm(r.cells['ood_ft_ece'])} | "
                      f"{paper['paper_ood_ft']} | {_f1_cell(r, 'ood_noft')} | {_pm(r.cells['ood_noft_ece'])} | "
                      f"{paper['paper_ood_noft']} |\n")
    gens = [g for g in per_gen if g.dataset == dataset]
    methods = sorted({g.method for g in gens if g.generation > 1})
    if not methods:
        return
    top = max([g.generation for g in gens] + [len(ID_PER_GENERATION[m][dataset]) for m in methods
                                              if dataset in ID_PER_GENERATION.get(m, {})])
    for table, (f1, ece, paper, label) in (("11", ("id_macro_f1", "id_ece", ID_PER_GENERATION, "ID test")),
                                          ("12", ("ood_ft_macro_f1", "ood_ft_ece", OOD_PER_GENERATION,
                                                  f"OOD after {p:g}% fine-tuning" if p is not None else "OOD"))):
        if all(math.isnan(g.cells[f1].mean) for g in gens):  # e.g. no OOD fine-tuning: no Table 12
            continue
        buf.write(f"\n### {dataset}: {label} per generation (Table {table} layout: macro F1 / ECE; "
                  "** marks the reported generation g*)\n\n")
        buf.write("| method | " + " | ".join(f"gen {i}" for i in range(1, top + 1)) + " |\n")
        buf.write("|---" * (1 + top) + "|\n")
        for method in methods:
            cells = {g.generation: g for g in gens if g.method == method}
            out = []
            for i in range(1, top + 1):
                c = cells.get(i)
                text = f"{_pm(c.cells[f1])} / {_pm(c.cells[ece])}" if c else ""
                out.append(f"**{text}**" if c and c.reported else text)
            buf.write(f"| {method} | " + " | ".join(out) + " |\n")
            theirs = paper.get(method, {}).get(dataset)
            if theirs:
                g_paper = PAPER_GENERATION["id" if table == "11" else "ood"][method][dataset]
                cols = [f"{_paper_pm(t[0], t[1])} / {_paper_pm(t[2], t[3])}" for t in theirs]
                cols = [f"**{c}**" if i + 1 == g_paper else c for i, c in enumerate(cols)]
                buf.write(f"| {method} (paper) | " + " | ".join(cols + [""] * (top - len(cols))) + " |\n")


def markdown(summary: list[MethodResult], per_gen: list[GenerationResult], skipped: int) -> str:
    """The report's text: the rule, then per dataset its LLM, chain and reference tables, then footnotes."""
    buf = io.StringIO()
    pick = summary[0].pick if summary else SEED_MEAN
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
    for dataset in sorted({r.dataset for r in summary}):
        llm = [r for r in summary if r.dataset == dataset and r.kind == LLM]
        rows = [r for r in summary if r.dataset == dataset and r.kind != LLM]
        if llm:
            _llm_tables(buf, dataset, llm)
        if rows:
            _chain_tables(buf, dataset, rows, per_gen)
            footnotes += [f for f in PAPER_CONTRADICTIONS if f" on {dataset} " in f and
                          any(f" {m} on " in f for m in {r.method for r in rows})]
        not_run = _not_run(dataset, {r.method for r in llm + rows})
        if not_run:
            _reference_table(buf, dataset, not_run)
    if footnotes:
        buf.write("\nWhere the paper contradicts itself (its main tables against Tables 11/12):\n\n")
        buf.writelines(f"- {f}\n" for f in footnotes)
    return buf.getvalue()


def summary_record(r: MethodResult) -> dict:
    """One row of report.csv: the result's fields, each cell as mean and std, the paper's cells."""
    record = {"dataset": r.dataset, "method": r.method, "encoder": r.encoder, "seeds": r.seeds,
              "generation": r.generation, "generations_logged": r.generations_logged, "pick": r.pick}
    for name, (mean, std) in r.cells.items():
        record[name], record[name + "_std"] = mean, std
    record.update({"ood_percent": r.ood_percent, "kind": r.kind, **r.counts, **paper_cells(r.dataset, r.method)})
    return record


def generation_record(g: GenerationResult) -> dict:
    """One row of report_generations.csv."""
    record = {"dataset": g.dataset, "method": g.method, "generation": g.generation, "seeds": g.seeds,
              "reported": g.reported}
    for name, (mean, std) in g.cells.items():
        record[name], record[name + "_std"] = mean, std
    return record


def build_report(uri: str, experiment: str, out_dir: str | Path | None = None, ood_percent: float | None = None,
                 pick: str = SEED_MEAN) -> str:
    """The report's text, from the experiment's current runs; with `out_dir`, also its files there."""
    rows, skipped = collect(uri, experiment, ood_percent)
    if not rows:
        return f"no finished generations in experiment {experiment!r} yet" + (
            f" (skipped {skipped} run(s) that are not current)" if skipped else "")
    summary, per_gen = summarise(rows, pick), per_generation(rows)
    text = markdown(summary, per_gen, skipped)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(f"# {experiment}\n{text}")
        for name, table in (("report.csv", [summary_record(r) for r in summary]),
                            ("report_generations.csv", [generation_record(g) for g in per_gen])):
            with open(out / name, "w", newline="") as f:
                # LLM rows add their unusable-answer counts: every row's columns, blank where a row has none
                writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in table for k in row)), restval="")
                writer.writeheader()
                writer.writerows(table)
    return text


def diagrams(uri: str, experiment: str, dataset: str, out_dir: str | Path, seed: int | None = None,
             methods: list[str] | None = None) -> Path:
    """Each method's test reliability diagram at its g* for one dataset, side by side in one PNG, as
    reported (raw, or after its T): the figure `orchestrator.figures.reliability` draws, here of every
    method that ran (or `methods`, in that order)."""
    from orchestrator import figures

    return figures.reliability(uri, experiment, dataset, Path(out_dir), methods=methods, seed=seed)


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
