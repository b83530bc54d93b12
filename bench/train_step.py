"""The project's training loop against a bare PyTorch loop, same model and batches (issue 7.1).

Both train the packaged all-MiniLM-L6-v2 (`build_model`, RoBERTa-style head) on real ISEAR
text tokenised at max_length 64, batch 16, for a fixed number of steps, from the same
initial weights and over the same batches (`epoch_batches` with the same seed):

- project: `train(model, CrossEntropyTask(), ...)` with `select="last"` (no validation pass),
  i.e. the loop every method runs: task call, divergence check, zero_grad, backward,
  clip 3.0, AdamW step, linear schedule step, loss logging;
- bare: the same AdamW param groups and LambdaLR, then per step `pad_sequence` of the rows,
  forward, `F.cross_entropy`, zero_grad, backward, `clip_grad_norm_(3.0)`, step, schedule.

Each repeat times both (alternating which goes first) on fresh copies of the same weights,
including optimizer construction. Same torch thread count for both (default 1: steadier on
a shared machine). Prints the median seconds per step of each and the overhead ratio.

    python bench/train_step.py [--steps 20] [--repeats 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from _common import data_root, median, set_threads, timed

from trainables.batching import encode
from trainables.data import load_dataset
from trainables.methods.losses import CrossEntropyTask
from trainables.models import PACKAGED_MINILM, build_model, load_tokenizer
from trainables.train import TrainConfig, epoch_batches, set_seed, train

BATCH, MAX_LENGTH = 16, 64


def bare_loop(model, data, rows, cfg: TrainConfig, seed: int) -> None:
    """What one writes by hand: the same steps, nothing else."""
    set_seed(seed)
    rng = np.random.default_rng(seed)
    seqs = [torch.from_numpy(a) for a in data.ids]
    labels = torch.from_numpy(data.labels)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    total = math.ceil(len(rows) / cfg.batch_size) * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (total - s) / total))
    model.train()
    for _ in range(cfg.epochs):
        for batch in epoch_batches(rows, data.lengths, cfg.batch_size, False, rng):
            ids = torch.nn.utils.rnn.pad_sequence([seqs[i] for i in batch], batch_first=True, padding_value=data.pad_id)
            mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(seqs[i]), dtype=torch.long) for i in batch],
                                                   batch_first=True)
            loss = F.cross_entropy(model(ids, mask).float(), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per timed run")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each loop (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both loops")
    p.add_argument("--data-root", default=None)
    args = p.parse_args()
    threads = set_threads(args.threads)

    ds = load_dataset("isear", args.data_root or data_root())
    n = args.steps * BATCH
    data = encode(ds.train.texts[:n], ds.train.labels[:n], load_tokenizer(PACKAGED_MINILM), MAX_LENGTH)
    rows = np.arange(n)
    cfg = TrainConfig(epochs=1, batch_size=BATCH, lr=1e-4, select="last", bf16=False)
    base = build_model(PACKAGED_MINILM, ds.num_labels, seed=0)
    print(f"torch {torch.__version__}, {threads} thread(s); MiniLM, ISEAR train rows 0..{n - 1}, max_length {MAX_LENGTH}, "
          f"batch {BATCH}, {args.steps} steps, mean tokens/row {data.lengths.mean():.1f}")

    def project():
        train(copy.deepcopy(base), CrossEntropyTask(), data, None, cfg, seed=0, rows=rows)

    def bare():
        bare_loop(copy.deepcopy(base), data, rows, cfg, seed=0)

    project(), bare()  # warm-up: allocator, lazy imports, first-call kernels
    times = {"project": [], "bare": []}
    for r in range(args.repeats):
        order = [("project", project), ("bare", bare)] if r % 2 == 0 else [("bare", bare), ("project", project)]
        for name, fn in order:
            times[name].append(timed(fn)[0] / args.steps)
    for name in ("project", "bare"):
        print(f"{name:8s} s/step: median {median(times[name]):.4f}  all {[round(t, 4) for t in times[name]]}")
    ratios = [a / b for a, b in zip(times["project"], times["bare"])]
    ratio = median(times["project"]) / median(times["bare"])
    print(f"per-repeat ratios project/bare: {[round(x, 3) for x in ratios]}")
    verdict = "meets" if ratio <= 1.05 else "misses"
    print(f"train_step MiniLM ISEAR b{BATCH} L{MAX_LENGTH} {args.steps} steps x {args.repeats}, {threads} thread(s): "
          f"project {median(times['project']) * 1000:.0f} ms/step vs bare {median(times['bare']) * 1000:.0f} ms/step "
          f"-> overhead ratio {ratio:.3f} ({verdict} goal <= 1.05)")


if __name__ == "__main__":
    main()
