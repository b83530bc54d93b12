"""`emocal selective NAME --dataset D`: what calibration buys a user who abstains on low confidence.

Per method at its reported generation g* (orchestrator/results.py), from the stored test logits
(each generation's `logits.npz` artifact; `--split validation` for the validation rows, where a
user picks an abstention threshold) scaled by the temperature the method is reported
with: the risk-coverage curve and its area, AURC (docs/method.md, Selective prediction), mean ±
std over seeds, with the raw (T = 1) AURC beside it; and the curves of one seed as a figure.
Writes `selective_<dataset>.md`, `.json` and `.png` into --out.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # parse in the light CLI first: `--help` then imports no MLflow or torch
    from orchestrator.cli import run_module

    sys.exit(run_module("selective"))

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from orchestrator.results import LLM, collect, download_artifact, group, mean_std, reported_rows
from trainables import calibration, plots


SPLITS = {"test": "test", "validation": "val"}  # --split -> the prefix of its arrays in logits.npz


def stored_logits(uri: str, experiment: str, row, tmp: str, split: str = "test") -> tuple[np.ndarray, np.ndarray, float]:
    """A generation's stored logits and labels of `split`, and the temperature its method is reported with."""
    arrays = np.load(download_artifact(uri, experiment, row, "logits.npz", Path(tmp) / row.trial), allow_pickle=False)
    pair = json.loads(download_artifact(uri, experiment, row, "reliability_test.json", Path(tmp) / row.trial).read_text())
    prefix = SPLITS[split]
    return arrays[f"{prefix}_logits"], arrays[f"{prefix}_labels"], \
        float(pair["temperature"]) if row.ece_kind == "ts" else 1.0


def selective(uri: str, experiment: str, dataset: str, split: str = "test") -> dict:
    """method -> {generation, temperature per seed, AURC (reported T and raw) mean ± std, one seed's curve}."""
    rows, _ = collect(uri, experiment)
    rows = [r for r in rows if r.dataset == dataset and r.kind != LLM]  # an LLM states one confidence per answer
    if not rows:
        raise SystemExit(f"no finished trials of dataset {dataset!r} in experiment {experiment!r}")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for (_, method), trials in sorted(group(rows).items()):
            chosen = sorted(reported_rows(trials), key=lambda r: r.seed)
            scaled, raw, curve = [], [], None
            for r in chosen:
                logits, labels, t = stored_logits(uri, experiment, r, tmp, split)
                for temperature, into in ((t, scaled), (1.0, raw)):
                    probs = calibration.softmax(logits, temperature)
                    into.append(calibration.aurc(probs.max(-1), probs.argmax(-1) == labels))
                if curve is None:  # the smallest seed's, at its reported temperature
                    probs = calibration.softmax(logits, t)
                    kept_from, coverage, risk = calibration.risk_coverage(probs.max(-1), probs.argmax(-1) == labels)
                    curve = {"seed": r.seed, "temperature": t, "threshold": kept_from.tolist(),
                             "coverage": coverage.tolist(), "risk": risk.tolist()}
            out[method] = {"generation": chosen[0].generation, "seeds": [r.seed for r in chosen],
                           "aurc": mean_std(scaled)._asdict(), "aurc_raw": mean_std(raw)._asdict(),
                           "reported": chosen[0].ece_kind, "curve": curve}
    return out


def markdown(experiment: str, dataset: str, table: dict, split: str = "test") -> str:
    """The AURC table (percent; lower is better)."""
    def cell(ms: dict) -> str:
        return f"{100 * ms['mean']:.2f}" + ("" if np.isnan(ms["std"]) else f" ± {100 * ms['std']:.2f}")

    lines = [f"Selective prediction on the {dataset} {split} set ({experiment}): AURC (%, lower is better), mean ± std "
             "over seeds at g*, with the probabilities each method is reported with, and raw (T = 1).", "",
             "| method | g* | seeds | AURC as reported | AURC raw |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {v['generation']} | {len(v['seeds'])} | {cell(v['aurc'])} | {cell(v['aurc_raw'])} |"
              for m, v in table.items()]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """`emocal selective NAME --dataset D`: the AURC table printed and written, the curves drawn."""
    from orchestrator.locations import resolve_tracking_uri, run_folder

    uri = resolve_tracking_uri(args.tracking_uri, run_folder(args.runs, args.experiment), must_exist=True)
    table = selective(uri, args.experiment, args.dataset, args.split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(args.experiment, args.dataset, table, args.split)
    stem = f"selective_{args.dataset}" + ("" if args.split == "test" else f"_{args.split}")
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(table, indent=1))
    curves = {f"{m} g{v['generation']} (T = {v['curve']['temperature']:.2f})": (v["curve"]["coverage"], v["curve"]["risk"])
              for m, v in table.items()}
    plots.risk_coverage_plot(curves, out / f"{stem}.png", save_json=False,
                             title=f"{args.experiment}: risk-coverage on the {args.dataset} {args.split} set at g*, "
                                   "the smallest seed")
    print(text + f"\nwrote {out / f'{stem}.png'} (each curve's thresholds are in {stem}.json)")
    return 0


def main(argv=None) -> int:
    """`python -m orchestrator.selective ...` (the parser is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("selective", argv)
