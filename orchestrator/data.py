"""Seeing and getting the data: `emocal data stats|fetch` (= `python -m orchestrator.data stats|fetch`).

    emocal data stats [NAME ...] [--data-root DIR] [--format table|json] [--cache-dir DIR]
    emocal data fetch NAME [--data-root DIR] [--timeout S] [--force]

The data root is --data-root, else $EMOCAL_DATA; neither is an error, the same as the sweep's
(orchestrator/locations.py). The arguments are parsed in orchestrator/cli.py.

`stats` prints each dataset's per-split, per-label counts in the layout of the paper's
tables 13-18 (with the paper's number beside ours where the paper gives one) and the drops
by reason; `--format json` prints exactly `{dataset: {split: {label: count}}}` with splits
train/validation/test (for OOD datasets `train` is the OOD fine-tuning pool).

`fetch` downloads a dataset from its public source into `DATA_ROOT/NAME/`. On a machine
without internet it fails with the URL, the error, and the files to put there by hand.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # parse in the light CLI first: `--help` then imports no dataset reader
    from orchestrator.cli import run_module

    sys.exit(run_module("data"))

import argparse
import json
import logging
from pathlib import Path
from typing import Sequence, TextIO

from trainables.data import DATASETS, DataError, check_files, label_counts, load_dataset
from trainables.data.registry import SPLITS

_logger = logging.getLogger(__name__)


def _table(name: str, counts: dict[str, dict[str, int]], paper: dict, drops: dict[str, int], out: TextIO) -> None:
    info = DATASETS.get(name)
    title = f"{name} ({info.role}, partner {info.partner})" if info else name
    out.write(f"\n== {title}\n")
    width = max(len(label) for label in counts["train"]) + 2
    out.write("label".ljust(width) + "".join(f"{s:>22}" for s in SPLITS) + "\n")

    def cell(split: str, value: int, paper_value: int | None) -> str:
        return f"{value} (paper {paper_value})" if paper_value is not None else str(value)

    for label in counts["train"]:
        row = [cell(s, counts[s][label], paper.get(s, {}).get(label)) for s in SPLITS]
        out.write(label.ljust(width) + "".join(f"{c:>22}" for c in row) + "\n")
    totals = [cell(s, sum(counts[s].values()), sum(paper[s].values()) if s in paper else None) for s in SPLITS]
    out.write("total".ljust(width) + "".join(f"{c:>22}" for c in totals) + "\n")
    if info and info.role == "ood":
        out.write("(train = OOD fine-tuning pool)\n")
    out.write("drops: " + (", ".join(f"{k} {v}" for k, v in drops.items()) or "none") + "\n")


def stats(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout  # read at call time (tests swap sys.stdout)
    names = args.names or list(DATASETS)
    result: dict[str, dict[str, dict[str, int]]] = {}
    failed = 0
    for name in names:
        try:
            ds = load_dataset(name, args.data_root, split_seed=args.split_seed, cache_dir=args.cache_dir)
        except DataError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        result[name] = label_counts(ds)
        if args.format == "table":
            paper = {s: dict(c) for s, c in DATASETS[name].paper_counts.items()} if name in DATASETS else {}
            _table(name, result[name], paper, ds.drops, out)
    if args.format == "json":
        json.dump(result, out, indent=2)
        out.write("\n")
    return 1 if failed else 0


def fetch(args: argparse.Namespace) -> int:
    info = DATASETS[args.name]
    dest = Path(args.data_root) / info.name
    if not args.force:
        try:
            check_files(info.name, args.data_root)
            print(f"{info.name}: files already present in {dest} (use --force to download again)")
            return 0
        except DataError:
            pass
    assert info.fetch is not None
    try:
        written = info.fetch(dest, timeout=args.timeout)
    except Exception as err:  # noqa: BLE001 - any network/archive failure is reported, not raised
        files = "\n".join(f"  {dest / f}" for f in info.files)
        print(
            f"fetch {info.name}: download from {info.source} failed: {type(err).__name__}: {err}\n"
            f"This machine may be offline. Put the files there by hand instead:\n{files}\n"
            "(docs/spec.md lists each dataset's files under its datasets table)",
            file=sys.stderr,
        )
        return 1
    for path in written:
        print(f"wrote {path}")
    check_files(info.name, args.data_root)
    return 0


def run(args: argparse.Namespace) -> int:
    """`emocal data stats|fetch`, the data root already resolved (orchestrator/cli.py)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return stats(args) if args.command == "stats" else fetch(args)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m orchestrator.data ...` (the parser is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("data", argv)
