"""The pictures a reader of a run looks at before its tables, drawn from its MLflow store.

    emocal figures NAME --dataset isear [--runs DIR] [--tracking-uri URI] --out docs/replication
    (= python -m orchestrator.figures ...)

Three figures, each of the methods at their reported generation g* (orchestrator/report.py):
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

from orchestrator import report
from orchestrator.tracking import CURRENT, STATUS_TAG
from trainables import plots

RELIABILITY_METHODS = ("ce", "ce_ts", "sim_mixup_csd")
GENERATION_METHODS = ("sd", "csd", "sim_mixup_csd")


def reliability(uri: str, experiment: str, dataset: str, out: Path, methods=RELIABILITY_METHODS,
                seed: int | None = None) -> Path:
    """Test reliability of each method at g*, raw or scaled as the method is reported."""
    from mlflow import MlflowClient

    rows, _ = report.collect(uri, experiment)
    rows = [r for r in rows if r["dataset"] == dataset]
    g_star = {m: report.reported_generation(t) for (d, m), t in report._groups(rows).items()}
    seed = min(r["seed"] for r in rows) if seed is None else seed
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    panels = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            match = [r for r in rows if r["method"] == method and r["seed"] == seed and r["generation"] == g_star.get(method)]
            if not match:
                continue
            r = match[0]
            run = client.search_runs([exp.experiment_id], filter_string=(
                f"attributes.run_name = '{r['trial']}' and tags.`{STATUS_TAG}` = '{CURRENT}'"))[0]
            local = client.download_artifacts(run.info.run_id, f"gen{r['generation']}/reliability_test.json", tmp)
            pair = json.loads(Path(local).read_text())
            scaled = r["ece_kind"] == "ts"
            label = f"{method} g{r['generation']}, T = {pair['temperature']:.2f}" if scaled else \
                f"{method} g{r['generation']}, raw"
            panels[label] = pair["after" if scaled else "before"]
    if not panels:
        raise SystemExit(f"none of {', '.join(methods)} has a finished generation on {dataset} in {experiment!r}")
    target = out / f"reliability_{dataset}.png"
    plots.reliability_panels(panels, target, title=f"{experiment}: {dataset} test set, seed {seed}, as reported at g*")
    return target


def generations(uri: str, experiment: str, dataset: str, out: Path, methods=GENERATION_METHODS) -> Path:
    """ID test macro F1 and ECE per generation, mean ± std over seeds."""
    rows, _ = report.collect(uri, experiment)
    per_gen = [g for g in report.per_generation(rows) if g["dataset"] == dataset and g["method"] in methods]
    series: dict[str, dict[str, tuple]] = {"ID test macro F1 (%)": {}, "ID test ECE (%)": {}}
    for method in methods:
        gens = sorted((g for g in per_gen if g["method"] == method), key=lambda g: g["generation"])
        if not gens:
            continue
        x = [g["generation"] for g in gens]
        series["ID test macro F1 (%)"][method] = (x, [g["id_macro_f1"] for g in gens], [g["id_macro_f1_std"] for g in gens])
        series["ID test ECE (%)"][method] = (x, [g["id_ece"] for g in gens], [g["id_ece_std"] for g in gens])
    target = out / f"generations_{dataset}.png"
    plots.series_plot("generation", series, target, title=f"{experiment}: {dataset}, per generation (mean ± std over seeds)")
    return target


def ood_by_percent(uri: str, experiment: str, dataset: str, out: Path, methods=None) -> Path:
    """OOD test macro F1 and ECE against the fine-tuning percentage (0: none), at each method's g*."""
    rows, _ = report.collect(uri, experiment)
    rows = [r for r in rows if r["dataset"] == dataset and r.get("kind") != report.LLM]  # LLMs are not fine-tuned
    percents = sorted({float(p) for p in _logged_percents(uri, experiment)})
    g_star = {m: report.reported_generation(t) for (d, m), t in report._groups(rows).items()}
    methods = methods or sorted(g_star)
    by_percent = {p: report.collect(uri, experiment, ood_percent=p)[0] for p in percents}
    series: dict[str, dict[str, tuple]] = {"OOD test macro F1 (%)": {}, "OOD test ECE (%)": {}}
    for method in methods:
        if method not in g_star:
            continue
        at_g = lambda rs: [r for r in rs if r["dataset"] == dataset and r["method"] == method  # noqa: E731
                           and r["generation"] == g_star[method]]
        points = [(0.0, report._ms(r["ood_macro_f1"] for r in at_g(rows)), report._ms(r["ood_ece"] for r in at_g(rows)))]
        for p in percents:
            chosen = at_g(by_percent[p])
            points.append((p, report._ms(r["ft_macro_f1"] for r in chosen), report._ms(r["ft_ece"] for r in chosen)))
        x = [p for p, _, _ in points]
        label = f"{method} (g{g_star[method]})"
        series["OOD test macro F1 (%)"][label] = (x, [f[0] for _, f, _ in points], [f[1] for _, f, _ in points])
        series["OOD test ECE (%)"][label] = (x, [e[0] for _, _, e in points], [e[1] for _, _, e in points])
    target = out / f"ood_percent_{dataset}.png"
    plots.series_plot("OOD fine-tuning data (%; 0 = none)", series, target,
                      title=f"{experiment}: {dataset} -> its OOD partner, at g* (mean ± std over seeds)")
    return target


def _logged_percents(uri: str, experiment: str) -> set[float]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    found = set()
    for run in client.search_runs([exp.experiment_id], filter_string=f"tags.`{STATUS_TAG}` = '{CURRENT}'"):
        found |= {float(k[len("ood_ft"):-len("_macro_f1")]) for k in run.data.metrics
                  if k.startswith("ood_ft") and k.endswith("_macro_f1")}
    return found


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
