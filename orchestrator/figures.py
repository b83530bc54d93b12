"""The pictures a reader of a run looks at before its tables, drawn from its MLflow store.

    emocal figures NAME --dataset isear [--runs DIR] [--tracking-uri URI] --out docs/replication
    (= python -m orchestrator.figures ...)

Three figures, each of the methods at their reported generation g* (orchestrator/results.py):
- `reliability_<dataset>.png`: test-set reliability diagrams side by side (default `ce`, `ce_ts`,
  `sim_mixup_csd`; each as reported: raw for CE, after its validation-optimal T for "+ TS" and
  CSD methods), for one seed;
- `generations_<dataset>.png`: ID test macro F1 and ECE per generation, mean ± std over seeds
  (Table 11 as a plot; default `sd`, `csd`, `sim_mixup_csd`);
- `ood_percent_<dataset>.png`: OOD test macro F1 and ECE against the fine-tuning percentage,
  0 meaning no fine-tuning, at g*, mean ± std over seeds.
Each PNG has its numbers beside it as JSON.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # parse in the light CLI first: `--help` then imports no MLflow or torch
    from orchestrator.cli import run_module

    sys.exit(run_module("figures"))

import argparse
import json
import tempfile
from pathlib import Path
from typing import Sequence

from orchestrator.results import (LLM, collect, download_artifact, logged_percents, mean_std, per_generation,
                                  reported_generations)
from trainables import plots

RELIABILITY_METHODS = ("ce", "ce_ts", "sim_mixup_csd")
GENERATION_METHODS = ("sd", "csd", "sim_mixup_csd")


def reliability(uri: str, experiment: str, dataset: str, out: Path, methods: Sequence[str] | None = RELIABILITY_METHODS,
                seed: int | None = None) -> Path:
    """Test reliability of each method at g*, raw or scaled as the method is reported, for one seed
    (default: the smallest); `methods=None` is every method that ran, sorted. The one reliability
    figure of a sweep: `orchestrator.report --diagrams` draws this one too."""
    rows, _ = collect(uri, experiment)
    rows = [r for r in rows if r.dataset == dataset and r.kind != LLM]  # an LLM states one confidence: no diagram
    if not rows:
        raise SystemExit(f"no finished trials of dataset {dataset!r} in experiment {experiment!r}")
    g_star = {m: g for (_, m), g in reported_generations(rows).items()}
    methods = sorted(g_star) if methods is None else methods
    seed = min(r.seed for r in rows) if seed is None else seed
    panels = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            match = [r for r in rows if r.method == method and r.seed == seed and r.generation == g_star.get(method)]
            if not match:
                continue
            r = match[0]
            pair = json.loads(download_artifact(uri, experiment, r, "reliability_test.json", tmp).read_text())
            scaled = r.ece_kind == "ts"
            label = f"{method} g{r.generation}, T = {pair['temperature']:.2f}" if scaled else \
                f"{method} g{r.generation}, raw"
            panels[label] = pair["after" if scaled else "before"]
    if not panels:
        raise SystemExit(f"none of {', '.join(methods)} has a finished generation on {dataset} in {experiment!r}")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"reliability_{dataset}.png"
    plots.reliability_panels(panels, target, title=f"{experiment}: {dataset} test set, seed {seed}, as reported at g*")
    return target


def generations(uri: str, experiment: str, dataset: str, out: Path, methods=GENERATION_METHODS) -> Path:
    """ID test macro F1 and ECE per generation, mean ± std over seeds."""
    rows, _ = collect(uri, experiment)
    per_gen = [g for g in per_generation(rows) if g.dataset == dataset and g.method in methods]
    series: dict[str, dict[str, tuple]] = {"ID test macro F1 (%)": {}, "ID test ECE (%)": {}}
    for method in methods:
        gens = sorted((g for g in per_gen if g.method == method), key=lambda g: g.generation)
        if not gens:
            continue
        x = [g.generation for g in gens]
        for panel, cell in (("ID test macro F1 (%)", "id_macro_f1"), ("ID test ECE (%)", "id_ece")):
            series[panel][method] = (x, [g.cells[cell].mean for g in gens], [g.cells[cell].std for g in gens])
    target = out / f"generations_{dataset}.png"
    plots.series_plot("generation", series, target, title=f"{experiment}: {dataset}, per generation (mean ± std over seeds)")
    return target


def ood_by_percent(uri: str, experiment: str, dataset: str, out: Path, methods=None) -> Path:
    """OOD test macro F1 and ECE against the fine-tuning percentage (0: none), at each method's g*."""
    rows, _ = collect(uri, experiment)
    rows = [r for r in rows if r.dataset == dataset and r.kind != LLM]  # LLMs are not fine-tuned
    percents = sorted({float(p) for p in logged_percents(uri, experiment)})
    g_star = {m: g for (_, m), g in reported_generations(rows).items()}
    methods = methods or sorted(g_star)
    by_percent = {p: collect(uri, experiment, ood_percent=p)[0] for p in percents}
    series: dict[str, dict[str, tuple]] = {"OOD test macro F1 (%)": {}, "OOD test ECE (%)": {}}
    for method in methods:
        if method not in g_star:
            continue
        at_g = lambda rs: [r for r in rs if r.dataset == dataset and r.method == method  # noqa: E731
                           and r.generation == g_star[method]]
        points = [(0.0, mean_std(r.value("ood_macro_f1") for r in at_g(rows)),
                   mean_std(r.value("ood_ece") for r in at_g(rows)))]
        for p in percents:
            chosen = at_g(by_percent[p])
            points.append((p, mean_std(r.value("ft_macro_f1") for r in chosen), mean_std(r.value("ft_ece") for r in chosen)))
        x = [p for p, _, _ in points]
        label = f"{method} (g{g_star[method]})"
        series["OOD test macro F1 (%)"][label] = (x, [f[0] for _, f, _ in points], [f[1] for _, f, _ in points])
        series["OOD test ECE (%)"][label] = (x, [e[0] for _, _, e in points], [e[1] for _, _, e in points])
    target = out / f"ood_percent_{dataset}.png"
    plots.series_plot("OOD fine-tuning data (%; 0 = none)", series, target,
                      title=f"{experiment}: {dataset} -> its OOD partner, at g* (mean ± std over seeds)")
    return target


def run(args: argparse.Namespace) -> int:
    """`emocal figures NAME --dataset D`: the three figures into --out, from the store the run folder names."""
    from orchestrator.locations import resolve_tracking_uri, run_folder

    uri = resolve_tracking_uri(args.tracking_uri, run_folder(args.runs, args.experiment), must_exist=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in (reliability(uri, args.experiment, args.dataset, out, seed=args.seed),
                 generations(uri, args.experiment, args.dataset, out),
                 ood_by_percent(uri, args.experiment, args.dataset, out)):
        print(path)
    return 0


def main(argv=None) -> int:
    """`python -m orchestrator.figures ...` (the parser is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("figures", argv)
