"""Choose a learning rate on the ID validation set of the CE teacher alone (issue 11).

    python bench/select_lr.py specs/replication_cpu.yaml --lrs 5e-5 1e-4 2e-4 --seed 0

Trains the spec's generation-1 plain-CE stage of its first dataset once per learning rate
(everything else as the spec says, OOD skipped) and prints, per lr and epoch, the validation
macro F1 that model selection sees, then the validation macro F1 and ECE of the selected
epoch. Test metrics are computed by the stage but never printed: nothing here may be chosen
by looking at test numbers. Run the lrs in parallel with one process per lr (`--lrs` one each).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time

import _common  # noqa: F401  (the repo on sys.path)
import torch

from orchestrator.plan import trial_plan
from orchestrator.spec import load_spec
from trainables.methods.registry import get_method
from trainables.stage import run_stage
from trainables.store import StageStore


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("spec")
    p.add_argument("--lrs", type=float, nargs="+", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-root", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(args.spec, data_root=str(args.data_root or _common.data_root()))
    entry = spec.datasets[0]
    for lr in args.lrs:
        entry_lr = dataclasses.replace(entry, train=dataclasses.replace(entry.train, lr=lr), ood_finetune=None)
        stage = trial_plan(spec, entry_lr, get_method("ce"), args.seed).stages[0]
        stage = dataclasses.replace(stage, ood=None)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            _, result = run_stage(stage, None, None, None, StageStore(tmp))
            seconds = time.perf_counter() - start
        m = result["metrics"]
        print(json.dumps({"lr": lr, "seed": args.seed, "seconds": round(seconds, 1),
                          "val_score_per_epoch": [h.get("val_score") for h in result["history"]],
                          "best_epoch": m["best_epoch"], "val_macro_f1": round(m["val_macro_f1"], 2),
                          "val_ece": round(m["val_ece"], 2)}), flush=True)


if __name__ == "__main__":
    main()
