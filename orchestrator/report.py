"""MLflow -> tables in the layout of the paper's Tables 1 and 2 (and 11/12 per generation).

    python -m orchestrator.report EXPERIMENT [--out DIR] [--ood-percent 3]

Each cell is mean ± std over seeds of a method's reported generation (best by ID validation
macro F1, or the last for 1G presets), F1 as "macro (weighted)", ECE in percent: after the
generation's own validation-optimal T for CSD-family and "+ TS" methods, raw otherwise
(METHOD.md, Self-distillation). The paper's value stands beside each cell where it has one.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from orchestrator.paper_values import ID_TABLE, OOD_TABLE
from orchestrator.tracking import tracking_uri

ECE_TAG, PICK_TAG = "emocal.ece", "emocal.report_generation"
ID_METRICS = ("val_macro_f1", "test_macro_f1", "test_weighted_f1", "test_ece", "test_ece_ts")
OOD_BASE = ("ood_macro_f1", "ood_weighted_f1", "ood_ece")


def _histories(client, run_id: str, names) -> dict[int, dict[str, float]]:
    by_gen: dict[int, dict[str, float]] = defaultdict(dict)
    for name in names:
        for m in client.get_metric_history(run_id, name):
            by_gen[m.step][name] = m.value
    return by_gen


def collect(uri: str, experiment: str, ood_percent: float | None = None) -> list[dict]:
    """One row per (trial, generation) with the metrics the tables use."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"no MLflow experiment {experiment!r} at {uri}")
    rows = []
    for run in client.search_runs([exp.experiment_id], max_results=50000):
        tags = run.data.tags
        if "method" not in tags:
            continue
        ood_keys = sorted(k for k in run.data.metrics if k.startswith("ood_ft") and k.endswith("_macro_f1"))
        percents = sorted(float(k[len("ood_ft"):-len("_macro_f1")]) for k in ood_keys)
        p = ood_percent if ood_percent is not None else (3.0 if 3.0 in percents else (percents[len(percents) // 2] if percents else None))
        ft = tuple(f"ood_ft{p:g}_{m}" for m in ("macro_f1", "weighted_f1", "ece")) if p is not None else ()
        for gen, metrics in sorted(_histories(client, run.info.run_id, ID_METRICS + OOD_BASE + ft).items()):
            row = {"trial": run.info.run_name, "seed": int(tags.get("seed", -1)), "dataset": tags["dataset"],
                   "method": tags["method"], "generation": gen, "ece_kind": tags.get(ECE_TAG, "raw"),
                   "pick": tags.get(PICK_TAG, "best"), "ood_percent": p, **metrics}
            for src, dst in zip(ft, ("ft_macro_f1", "ft_weighted_f1", "ft_ece")):
                row[dst] = metrics.get(src, math.nan)
            rows.append(row)
    return rows


def pick_generations(rows: list[dict]) -> list[dict]:
    """Each trial's reported generation: best ID validation macro F1 (ties: earliest), or last."""
    by_trial: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_trial[r["trial"]].append(r)
    picked = []
    for gens in by_trial.values():
        gens.sort(key=lambda r: r["generation"])
        if gens[0]["pick"] == "last":
            picked.append(gens[-1])
        else:
            picked.append(max(gens, key=lambda r: (r.get("val_macro_f1", -1), -r["generation"])))
    return picked


def _ms(values) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


def _fmt(mean: float, std: float) -> str:
    """mean±std over seeds; one seed has no spread to show."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f}±{std:.2f}"


def summarise(picked: list[dict]) -> list[dict]:
    """Mean/std over seeds per (dataset, method), ID and OOD, with the paper's values."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in picked:
        groups[(r["dataset"], r["method"])].append(r)
    out = []
    for (dataset, method), rs in sorted(groups.items()):
        ece_key = "test_ece_ts" if rs[0]["ece_kind"] == "ts" else "test_ece"
        row = {"dataset": dataset, "method": method, "seeds": len(rs),
               "generations": ",".join(str(r["generation"]) for r in sorted(rs, key=lambda r: r["seed"]))}
        for name, key in (("id_macro_f1", "test_macro_f1"), ("id_weighted_f1", "test_weighted_f1"), ("id_ece", ece_key),
                          ("ood_noft_macro_f1", "ood_macro_f1"), ("ood_noft_weighted_f1", "ood_weighted_f1"),
                          ("ood_noft_ece", "ood_ece"), ("ood_ft_macro_f1", "ft_macro_f1"),
                          ("ood_ft_weighted_f1", "ft_weighted_f1"), ("ood_ft_ece", "ft_ece")):
            row[name], row[name + "_std"] = _ms(r.get(key) for r in rs)
        row["ood_percent"] = rs[0]["ood_percent"]
        paper_id = ID_TABLE.get(method, {}).get(dataset)
        paper_ood = OOD_TABLE.get(method, {}).get(dataset)
        row["paper_id"] = f"{paper_id[0]:.2f} ({paper_id[1]:.2f}) / {paper_id[2]:.2f}" if paper_id else ""
        row["paper_ood"] = f"{paper_ood[0]:.2f} ({paper_ood[1]:.2f}) / {paper_ood[2]:.2f}" if paper_ood else ""
        out.append(row)
    return out


def _markdown(summary: list[dict], per_gen: list[dict]) -> str:
    buf = io.StringIO()
    for dataset in sorted({r["dataset"] for r in summary}):
        rows = [r for r in summary if r["dataset"] == dataset]
        buf.write(f"\n### {dataset}: ID test (Table 1 layout; best generation per method)\n\n")
        buf.write("| method | seeds | gen | F1 macro (weighted) | ECE | paper F1 (w) / ECE |\n|---|---|---|---|---|---|\n")
        for r in rows:
            buf.write(f"| {r['method']} | {r['seeds']} | {r['generations']} | "
                      f"{_fmt(r['id_macro_f1'], r['id_macro_f1_std'])} ({_fmt(r['id_weighted_f1'], r['id_weighted_f1_std'])}) | "
                      f"{_fmt(r['id_ece'], r['id_ece_std'])} | {r['paper_id']} |\n")
        p = rows[0]["ood_percent"]
        if any(not math.isnan(r["ood_noft_macro_f1"]) for r in rows):
            buf.write(f"\n### {dataset}: OOD test (Table 2 layout; after {p:g}% fine-tuning, and without)\n\n"
                      if p is not None else f"\n### {dataset}: OOD test without fine-tuning\n\n")
            buf.write("| method | F1 macro (weighted), FT | ECE, FT | F1 macro (weighted), no FT | ECE, no FT | paper FT F1 (w) / ECE |\n"
                      "|---|---|---|---|---|---|\n")
            for r in rows:
                buf.write(f"| {r['method']} | {_fmt(r['ood_ft_macro_f1'], r['ood_ft_macro_f1_std'])} "
                          f"({_fmt(r['ood_ft_weighted_f1'], r['ood_ft_weighted_f1_std'])}) | {_fmt(r['ood_ft_ece'], r['ood_ft_ece_std'])} | "
                          f"{_fmt(r['ood_noft_macro_f1'], r['ood_noft_macro_f1_std'])} "
                          f"({_fmt(r['ood_noft_weighted_f1'], r['ood_noft_weighted_f1_std'])}) | "
                          f"{_fmt(r['ood_noft_ece'], r['ood_noft_ece_std'])} | {r['paper_ood']} |\n")
        gens = [g for g in per_gen if g["dataset"] == dataset]
        if any(g["generation"] > 1 for g in gens):
            buf.write(f"\n### {dataset}: per generation (Tables 11 and 12 layout: macro F1 / ECE)\n\n")
            top = max(g["generation"] for g in gens)
            buf.write("| method | " + " | ".join(f"gen {i} ID" for i in range(1, top + 1)) + " | "
                      + " | ".join(f"gen {i} OOD FT" for i in range(1, top + 1)) + " |\n")
            buf.write("|---" * (1 + 2 * top) + "|\n")
            for method in sorted({g["method"] for g in gens}):
                cells = {g["generation"]: g for g in gens if g["method"] == method}
                id_cells = [f"{cells[i]['id_macro_f1']:.2f} / {cells[i]['id_ece']:.2f}" if i in cells else "" for i in range(1, top + 1)]
                ood_cells = [f"{cells[i]['ood_ft_macro_f1']:.2f} / {cells[i]['ood_ft_ece']:.2f}" if i in cells else "" for i in range(1, top + 1)]
                buf.write(f"| {method} | " + " | ".join(id_cells + ood_cells) + " |\n")
    return buf.getvalue()


def per_generation(rows: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["method"], r["generation"])].append(r)
    out = []
    for (dataset, method, gen), rs in sorted(groups.items()):
        ece_key = "test_ece_ts" if rs[0]["ece_kind"] == "ts" else "test_ece"
        out.append({"dataset": dataset, "method": method, "generation": gen,
                    "id_macro_f1": _ms(r.get("test_macro_f1") for r in rs)[0],
                    "id_ece": _ms(r.get(ece_key) for r in rs)[0],
                    "ood_ft_macro_f1": _ms(r.get("ft_macro_f1") for r in rs)[0],
                    "ood_ft_ece": _ms(r.get("ft_ece") for r in rs)[0]})
    return out


def build_report(uri: str, experiment: str, out_dir: str | Path | None = None, ood_percent: float | None = None) -> str:
    rows = collect(uri, experiment, ood_percent)
    if not rows:
        return f"no finished generations in experiment {experiment!r} yet"
    summary = summarise(pick_generations(rows))
    text = _markdown(summary, per_generation(rows))
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(f"# {experiment}\n{text}")
        with open(out / "report.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(summary[0]))
            writer.writeheader()
            writer.writerows(summary)
    return text


def diagrams(uri: str, experiment: str, dataset: str, out_dir: str | Path, seed: int | None = None) -> Path:
    """Each method's reported-generation reliability diagram (test, before/after TS) for one
    dataset, side by side in one PNG (first seed unless `seed` is given)."""
    from mlflow import MlflowClient

    from trainables.plots import side_by_side

    client = MlflowClient(uri)
    rows = [r for r in pick_generations(collect(uri, experiment)) if r["dataset"] == dataset]
    if not rows:
        raise SystemExit(f"no finished trials of dataset {dataset!r} in experiment {experiment!r}")
    chosen: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["seed"]):
        if (seed is None or r["seed"] == seed) and r["method"] not in chosen:
            chosen[r["method"]] = r
    exp = client.get_experiment_by_name(experiment)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for method, r in chosen.items():
        run = client.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{r['trial']}'")[0]
        local = client.download_artifacts(run.info.run_id, f"gen{r['generation']}/reliability_test.png", str(out / method))
        images[f"{method} (gen {r['generation']})"] = local
    target = out / f"reliability_{dataset}.png"
    side_by_side(images, target, title=f"{experiment}: {dataset}, test reliability before / after TS", columns=2)
    return target


def mlflow_ui_hint(uri: str, experiment_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"MLflow: {uri.rstrip('/')}/#/experiments/{experiment_id}"
    return (f"Open the MLflow UI:  mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000\n"
            f"  then http://127.0.0.1:5000/#/experiments/{experiment_id}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m orchestrator.report", description=__doc__.split("\n")[0])
    p.add_argument("experiment", help="the MLflow experiment (the spec's name)")
    p.add_argument("--out", help="also write report.md and report.csv here")
    p.add_argument("--ood-percent", type=float, help="which OOD fine-tuning percentage to tabulate (default 3)")
    p.add_argument("--diagrams", metavar="DATASET",
                   help="also put each method's reliability diagram for DATASET side by side (in --out or .)")
    args = p.parse_args(argv)
    print(build_report(tracking_uri(), args.experiment, args.out, args.ood_percent))
    if args.diagrams:
        print(f"diagrams: {diagrams(tracking_uri(), args.experiment, args.diagrams, args.out or '.')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
