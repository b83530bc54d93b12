"""Where a Sim-MixUp teacher's and an OOD fine-tuning's time goes on the CPU (issue 25, part 3).

    python bench/mixup_profile.py [--data-root DIR] [--repeats 3] [--profile]

On the quickstart's data (specs/quickstart.yaml: ISEAR capped to 240 training rows, the packaged
MiniLM, max_length 64, batch 16, grouped by length), each repeat trains, in alternation, one epoch
of the CE teacher task and one of the Sim-MixUp teacher task (its data map from the CE run's own
training dynamics) with emocal's `train()`, then one OOD fine-tuning at 3% of Emotion-Stimulus and
its evaluation on the OOD test. For each it prints seconds, the padded tokens the encoder computed
(counted from the batches collated) and their ratio to the rows' true tokens. The Sim-MixUp/CE
ratio of seconds is the figure the issue bounds (at most 3.15x: three rows a row explain 3x), and
the ratio of padded tokens says how much of the excess is padding rather than the method.
`--profile` adds cProfile's top functions of one Sim-MixUp epoch.
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import pstats
import statistics
import time

import numpy as np

from _common import ROOT, data_root, machine


class Tokens:
    """Padded and true tokens of every batch collated by the tasks and by predict_logits."""

    def __init__(self):
        import trainables.methods.losses as losses
        import trainables.train as train_module

        self.padded = self.true = 0
        self.modules = (losses, train_module)
        self.original = losses.collate

        def counting(data, rows, device="cpu"):
            ids, mask = self.original(data, rows, device)
            self.padded += ids.numel()
            self.true += int(mask.sum())
            return ids, mask

        for m in self.modules:
            m.collate = counting

    def take(self) -> tuple[int, int]:
        out = (self.padded, self.true)
        self.padded = self.true = 0
        return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    root = str(args.data_root or data_root())

    import torch

    from orchestrator.plan import build_plan
    from orchestrator.spec import load_spec
    from trainables.cartography import DataMap
    from trainables.methods.losses import CrossEntropyTask, MixupTask
    from trainables.methods.partners import RandomPartners, SaliencyPartners, saliency
    from trainables.methods.registry import get_method
    from trainables.models import build_model
    from trainables.stage import prepare_data
    from trainables.train import predict_logits, train
    from trainables.batching import encode
    from trainables.data import ood_finetune_indices
    from trainables.models import load_tokenizer

    torch.set_num_threads(1)  # as a quickstart stage task (1 CPU a trial)
    spec = load_spec(str(ROOT / "specs" / "quickstart.yaml"), data_root=root)
    stage = next(t for t in build_plan(spec) if t.method.name == "sim_mixup_csd").stages[0]
    data = prepare_data(stage.data)
    cfg = dataclasses.replace(stage.train, epochs=1, select="last")
    k = len(data.id_data.labels)
    tokens = Tokens()
    print(f"mixup_profile on {machine()}, torch threads 1; {len(data.train)} training rows, batch {cfg.batch_size}")

    def model():
        return build_model(stage.data.model, k, seed=0)

    fit = train(model(), CrossEntropyTask(), data.train, None, dataclasses.replace(cfg, epochs=2), seed=0,
                record_dynamics=True)  # the data map of a CE run, as the sweep's
    tokens.take()
    dmap = DataMap.from_arrays({"gold_probs": fit.gold_probs, "correct": fit.correct})
    easy, ambiguous = dmap.regions(1.0)
    recipe = get_method("sim_mixup_csd").teacher
    initial = saliency(torch.tensor(fit.last_logits), torch.tensor(data.train.labels), recipe.signed_saliency).numpy()
    rows = np.sort(np.concatenate([easy, ambiguous]))

    def ce():
        return train(model(), CrossEntropyTask(), data.train, None, cfg, seed=1, rows=rows)

    def sim():
        partners = SaliencyPartners(easy, ambiguous, initial, recipe.scope, recipe.signed_saliency)
        return train(model(), MixupTask(partners, recipe.alpha, recipe.main_weight, recipe.layer), data.train, None,
                     cfg, seed=1, rows=rows)

    ood_cfg = stage.ood
    picked = ood_finetune_indices(data.ood_data, 3.0, seed=stage.data.split_seed)
    pool = data.ood_data.train
    ood_rows = encode([pool.texts[i] for i in picked], pool.labels[picked], load_tokenizer(stage.data.model),
                      stage.data.max_length)
    joined = ood_rows.concat(data.train)

    def ood_finetune():
        task = MixupTask(RandomPartners(len(ood_rows) + np.asarray(ambiguous)), ood_cfg.alpha, ood_cfg.ood_weight,
                         "features")
        tuned_cfg = dataclasses.replace(cfg, epochs=ood_cfg.epochs, batch_size=ood_cfg.batch_size)
        return train(model(), task, joined, None, tuned_cfg, seed=3, rows=np.arange(len(ood_rows)))

    figures: dict[str, list] = {}
    for r in range(args.repeats):
        for name, fn in (("ce", ce), ("sim_mixup", sim), ("ood_finetune", ood_finetune)):
            start = time.perf_counter()
            out = fn()
            figures.setdefault(name, []).append((time.perf_counter() - start, *tokens.take()))
            if name == "ood_finetune":
                start = time.perf_counter()
                logits = predict_logits(out.model, data.ood_test, cfg.eval_batch_size)
                figures.setdefault("ood_evaluate", []).append((time.perf_counter() - start, *tokens.take()))
                figures.setdefault("ood_logits", []).append(logits)
        print(f"repeat {r}: " + ", ".join(f"{n} {v[-1][0]:.2f} s" for n, v in figures.items() if n != "ood_logits"),
              flush=True)
    same = all(np.array_equal(figures["ood_logits"][0], x) for x in figures["ood_logits"])
    med = {n: statistics.median(s for s, _, _ in v) for n, v in figures.items() if n != "ood_logits"}
    for name in ("ce", "sim_mixup", "ood_finetune", "ood_evaluate"):
        _, padded, true = figures[name][0]
        print(f"{name}: median {med[name]:.2f} s; padded tokens {padded:,}, true {true:,} "
              f"({padded / true:.2f}x)")
    print(f"mixup_profile summary: Sim-MixUp {med['sim_mixup'] / med['ce']:.2f}x a CE teacher's epoch "
          f"(padded tokens {figures['sim_mixup'][0][1] / figures['ce'][0][1]:.2f}x); OOD fine-tuning "
          f"{med['ood_finetune']:.2f} s and its evaluation {med['ood_evaluate']:.2f} s; OOD logits the same in every "
          f"repeat: {same}")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        sim()
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(18)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
