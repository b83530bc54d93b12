"""Tokens computed per epoch: padding to max length, dynamic padding, length-grouped (issue 7.3).

On the real training splits of the three ID datasets (GoEmotions, Empathetic Dialogues,
ISEAR), tokenised with the MiniLM tokenizer at max_length 128, counts the tokens one epoch
pushes through the encoder (batch rows x batch width, summed over batches) for:

- (a) every row padded to max_length (a fixed-shape collator);
- (b) dynamic padding over random batches (`epoch_batches(group_by_length=False)`);
- (c) dynamic padding over length-grouped batches (`group_by_length=True`, HF's scheme);

against the sum of true lengths (the floor). (b) and (c) are medians over `--epochs`
shuffles. No training: only counting.

    python bench/padding.py [--batch-sizes 32 64] [--epochs 5]
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import data_root, median

from trainables.batching import encode
from trainables.data import load_dataset
from trainables.models import PACKAGED_MINILM, load_tokenizer
from trainables.train import epoch_batches

DATASETS = ("goemotions", "empathetic_dialogues", "isear")
MAX_LENGTH = 128


def tokens(batches, lengths: np.ndarray) -> int:
    return int(sum(len(b) * lengths[b].max() for b in batches))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    p.add_argument("--epochs", type=int, default=5, help="shuffles per scheme (median reported)")
    p.add_argument("--data-root", default=None)
    args = p.parse_args()
    root = args.data_root or data_root()
    tokenizer = load_tokenizer(PACKAGED_MINILM)

    print(f"{'dataset':22s} {'rows':>6s} {'batch':>5s} {'true':>10s} {'max_len':>10s} {'dynamic':>10s} {'grouped':>10s}"
          f"  {'max/true':>8s} {'dyn/true':>8s} {'grp/true':>8s}")
    summary = []
    for name in DATASETS:
        ds = load_dataset(name, root)
        lengths = encode(ds.train.texts, ds.train.labels, tokenizer, MAX_LENGTH).lengths
        rows = np.arange(len(lengths))
        true = int(lengths.sum())
        for bs in args.batch_sizes:
            padded = len(lengths) * MAX_LENGTH
            dyn = median([tokens(epoch_batches(rows, lengths, bs, False, np.random.default_rng(s)), lengths)
                          for s in range(args.epochs)])
            grp = median([tokens(epoch_batches(rows, lengths, bs, True, np.random.default_rng(s)), lengths)
                          for s in range(args.epochs)])
            print(f"{name:22s} {len(lengths):6d} {bs:5d} {true:10d} {padded:10d} {int(dyn):10d} {int(grp):10d}"
                  f"  {padded / true:8.2f} {dyn / true:8.2f} {grp / true:8.2f}")
            summary.append(f"{name} b{bs} max/dyn/grp = {padded / true:.2f}/{dyn / true:.2f}/{grp / true:.2f}")
        print(f"{'':22s} mean true length {lengths.mean():.1f}, max {lengths.max()}, "
              f"truncated at {MAX_LENGTH}: {(lengths >= MAX_LENGTH).sum()} rows")
    print("padding tokens/epoch relative to true lengths (MiniLM tokenizer, L128): " + "; ".join(summary))


if __name__ == "__main__":
    main()
