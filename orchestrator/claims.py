"""The paper's directional claims, checked against a run's MLflow store (issue 11).

    emocal claims NAME --dataset isear [--runs DIR] [--tracking-uri URI] [--out DIR]   # writes DIR/claims.md
    (= python -m orchestrator.claims ...)

Each claim is decided by a rule fixed here, before any run was looked at, on the cells the
report prints (orchestrator/results.py: each method at its reported generation g*, mean ± std
over seeds), and printed with the numbers that decide it and the paper's own:
1. temperature scaling lowers ID ECE against plain CE: mean ECE of `ce_ts` < `ce`;
2. CSD has lower ID ECE than SD: mean ECE of `csd` < `sd`;
3. Sim-MixUp + CSD has the lowest ID ECE of the KD methods at similar or better F1: its mean ECE
   is the lowest of the KD methods present and its macro F1 is at most SIMILAR_F1 points below
   the best of theirs;
4. later generations are better than earlier ones: for each KD method, g* (best seed-mean
   validation F1) is a student (g* > 1) and its test macro F1 at g* is above generation 1's;
5. OOD fine-tuning on 3% beats no fine-tuning on F1 without a large ECE increase: for every
   method, FT macro F1 > no-FT macro F1 and FT ECE - no-FT ECE <= LARGE_ECE points.
"Per seed" counts how many seeds agree with the direction (paired by seed, at g*).
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # parse in the light CLI first: `--help` then imports no MLflow
    from orchestrator.cli import run_module

    sys.exit(run_module("claims"))

import argparse
import math
from pathlib import Path

from orchestrator.paper_values import ID_TABLE, OOD_TABLE
from orchestrator.report import format_pm
from orchestrator.results import (Generation, MeanStd, collect, group, mean_std, reported_generation, reported_rows,
                                  summarise)

KD_METHODS = ("sd", "csd", "rand_mixup_csd", "ea_mixup_csd", "sim_mixup_csd")
SIMILAR_F1 = 1.0  # claim 3: "similar" F1 is within this many points of the best KD method
LARGE_ECE = 2.0  # claim 5: a "large" ECE increase is more than this many points


def _pm(cell: MeanStd) -> str:
    return format_pm(*cell)


# each claim's short text, and what a sweep must hold before the claim can be decided (an
# undecided claim is listed with it, so a reader knows what is missing)
CLAIMS = {1: ("temperature scaling lowers ID ECE against plain CE", "needs ce and ce_ts"),
          2: ("CSD has lower ID ECE than SD", "needs sd and csd"),
          3: ("Sim-MixUp + CSD has the lowest ID ECE of the KD methods at similar or better F1",
              "needs sim_mixup_csd and another KD method, each with a finished student generation"),
          4: ("later generations are better than earlier ones", "needs a KD method with a finished student generation"),
          5: ("OOD fine-tuning beats no fine-tuning on F1 without a large ECE increase",
              "needs OOD fine-tuning results")}


def _paired(rows_a: list[Generation], rows_b: list[Generation], key: str | None) -> tuple[int, int]:
    """Seeds where a < b on `key`, of the seeds both have."""
    a = {r.seed: r.value(key) for r in rows_a}
    b = {r.seed: r.value(key) for r in rows_b}
    common = sorted(set(a) & set(b))
    return sum(a[s] < b[s] for s in common), len(common)


def check(uri: str, experiment: str, dataset: str) -> list[dict]:
    return check_rows(collect(uri, experiment)[0], dataset)


def check_rows(rows: list[Generation], dataset: str) -> list[dict]:
    """The claims that the methods present can decide, each with `held` and its evidence."""
    rows = [r for r in rows if r.dataset == dataset]
    summary = {s.method: s for s in summarise(rows)}
    groups = group(rows)
    at_g = {method: reported_rows(trials) for (_, method), trials in groups.items()}
    paper_id = {m: v.get(dataset) for m, v in ID_TABLE.items()}
    claims = []

    def add(number, text, held, ours, paper, seeds=""):
        claims.append({"claim": number, "text": text, "held": held, "ours": ours, "paper": paper, "per_seed": seeds})

    def cell(m, name) -> float:
        return summary[m].cells[name].mean

    def ece(m):
        return _pm(summary[m].cells["id_ece"])

    def f1(m):
        return _pm(summary[m].cells["id_macro_f1"])

    if {"ce", "ce_ts"} <= set(summary):
        k, n = _paired(at_g["ce_ts"], at_g["ce"], None)
        add(1, CLAIMS[1][0], cell("ce_ts", "id_ece") < cell("ce", "id_ece"),
            f"ECE ce {ece('ce')} -> ce_ts {ece('ce_ts')}",
            f"{paper_id['ce'][2]:.2f} -> {paper_id['ce_ts'][2]:.2f}" if paper_id.get("ce") else "", f"{k}/{n} seeds lower")
    if {"sd", "csd"} <= set(summary):
        k, n = _paired(at_g["csd"], at_g["sd"], None)
        add(2, CLAIMS[2][0], cell("csd", "id_ece") < cell("sd", "id_ece"),
            f"ECE sd {ece('sd')} (g{summary['sd'].generation}) vs csd {ece('csd')} (g{summary['csd'].generation})",
            f"sd {paper_id['sd'][2]:.2f} vs csd {paper_id['csd'][2]:.2f}" if paper_id.get("sd") else "", f"{k}/{n} seeds lower")
    # a KD method counts once a student generation is logged (a teacher alone is not the method)
    kd = [m for m in KD_METHODS if m in summary and summary[m].generations_logged >= 2]
    if "sim_mixup_csd" in kd and len(kd) > 1:
        lowest = min(kd, key=lambda m: cell(m, "id_ece"))
        best_f1 = max(cell(m, "id_macro_f1") for m in kd)
        gap = best_f1 - cell("sim_mixup_csd", "id_macro_f1")
        add(3, f"Sim-MixUp + CSD has the lowest ID ECE of the KD methods ({', '.join(kd)}) at similar "
               f"(within {SIMILAR_F1:g} point) or better F1",
            lowest == "sim_mixup_csd" and gap <= SIMILAR_F1,
            "; ".join(f"{m} ECE {ece(m)}, F1 {f1(m)}" for m in kd),
            "; ".join(f"{m} {paper_id[m][2]:.2f} / {paper_id[m][0]:.2f}" for m in kd if paper_id.get(m)),
            f"lowest ECE: {lowest}; F1 {gap:+.2f} points behind the best" if gap > 0 else f"lowest ECE: {lowest}; best F1")
    later = []
    for m in kd:
        trials = groups[(dataset, m)]
        g = reported_generation(trials)
        first = mean_std(gens[1].value("test_macro_f1") for gens in trials.values() if 1 in gens).mean
        at = cell(m, "id_macro_f1")
        later.append((m, g, first, at, g > 1 and at > first))
    if later:
        add(4, "later generations are better than earlier ones (g* is a student, and its test F1 beats generation 1's)",
            all(x[4] for x in later),
            "; ".join(f"{m}: g*={g}, F1 g1 {a:.2f} -> g* {b:.2f}" for m, g, a, b, _ in later),
            "best in generation 3 or 4 (Table 11)", f"{sum(x[4] for x in later)}/{len(later)} methods")
    ood = [m for m in summary if not math.isnan(cell(m, "ood_ft_macro_f1"))]
    if ood:
        rows5 = []
        for m in ood:
            gain = cell(m, "ood_ft_macro_f1") - cell(m, "ood_noft_macro_f1")
            d_ece = cell(m, "ood_ft_ece") - cell(m, "ood_noft_ece")
            rows5.append((m, gain, d_ece, gain > 0 and d_ece <= LARGE_ECE))
        p = summary[ood[0]].ood_percent
        paper = OOD_TABLE.get("ce", {}).get(dataset), OOD_TABLE.get("ce_no_ft", {}).get(dataset)
        add(5, f"OOD fine-tuning on {p:g}% beats no fine-tuning on F1 without a large ECE increase (> {LARGE_ECE:g} points)",
            all(x[3] for x in rows5), "; ".join(f"{m}: F1 {g:+.2f}, ECE {e:+.2f}" for m, g, e, _ in rows5),
            f"RoBERTa: F1 {paper[1][0]:.2f} -> {paper[0][0]:.2f}, ECE {paper[1][2]:.2f} -> {paper[0][2]:.2f}"
            if all(paper) else "", f"{sum(x[3] for x in rows5)}/{len(rows5)} methods")
    return claims


def markdown(claims: list[dict]) -> str:
    out = ["| # | claim | held here? | ours (mean±std over seeds, at g*) | paper (roberta-base) | detail |",
           "|---|---|---|---|---|---|"]
    decided = {c["claim"] for c in claims}
    claims = sorted(claims + [{"claim": n, "text": text, "held": None, "ours": "", "paper": "", "per_seed": needs}
                              for n, (text, needs) in CLAIMS.items() if n not in decided], key=lambda c: c["claim"])
    for c in claims:
        if c["held"] is None:
            out.append(f"| {c['claim']} | {c['text']} | **undecided** |  |  | {c['per_seed']} |")
            continue
        out.append(f"| {c['claim']} | {c['text']} | {'**held**' if c['held'] else '**not held**'} | {c['ours']} | "
                   f"{c['paper']} | {c['per_seed']} |")
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    """`emocal claims NAME --dataset D`: the table printed (and written as --out/claims.md)."""
    from orchestrator.locations import resolve_tracking_uri, run_folder

    uri = resolve_tracking_uri(args.tracking_uri, run_folder(args.runs, args.experiment), must_exist=True)
    text = markdown(check(uri, args.experiment, args.dataset))
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "claims.md").write_text(text)
    return 0


def main(argv=None) -> int:
    """`python -m orchestrator.claims ...` (the parser is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("claims", argv)
