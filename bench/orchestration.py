"""Per-trial overhead of Ray Tune + MLflow: a sweep of tiny trials against one process (issue 7.6).

A tiny random BERT (2 layers, width 32) with the real MiniLM tokenizer is built in a temp
folder, as tests/conftest.py does, and a spec like tests/test_sweep_e2e.py's runs on real
ISEAR / Emotion-Stimulus: methods [ce, csd], 2 generations, max_train 48, max_eval 30,
1 epoch, OOD at 1 and 3%. Trials = 2 methods x seeds; stages are shared as in any sweep
(the CE teacher of a seed is csd's generation 1), so both sides train the same stages.

- sweep: `python -m orchestrator.sweep SPEC --num-cpus 2 --no-dashboard` in a subprocess,
  MLflow on SQLite in the temp folder; `cpus_per_trial: 2`, so one trial at a time with
  2 torch threads per generation task;
- one process: a fresh `python` that parses the same spec, builds the same plan and runs
  each trial's stages in order with `run_stage` (as tests/test_stage.py's `run_chain`),
  2 torch threads, no Ray, no MLflow.

Both are timed from process start to exit, so imports count on both sides. With two sweep
sizes (--seeds 2 4: 4 and 8 trials) the difference is split into a fixed start-up cost
and a marginal per-trial cost (the slope); the headline is the marginal per-trial cost.

    python bench/orchestration.py [--seeds 2 4] [--repeats 1]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, data_root, median


def build_tiny_model(out: Path) -> str:
    from trainables.models import save_tiny_encoder

    return save_tiny_encoder(out)


def tiny_spec(model: str, seeds: int) -> dict:
    return {
        "name": "bench_orch", "model": model, "max_length": 32, "seeds": list(range(seeds)), "generations": 2,
        "methods": ["ce", "csd"], "datasets": ["isear"], "data": {"max_train": 48, "max_eval": 30},
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3}, "ood": {"percents": [1, 3], "epochs": 1},
        "resources": {"cpus_per_trial": 2},
    }


def in_process(spec_path: str, root: str, store_dir: str) -> None:
    """The same trials' stages, in order, in this one process (what orchestrator/trial.py does, minus Ray/MLflow)."""
    import torch

    from orchestrator.plan import build_plan, handover_keys
    from orchestrator.spec import load_spec
    from trainables.stage import load_handover, run_stage
    from trainables.store import StageStore

    torch.set_num_threads(2)
    store = StageStore(store_dir)
    trials = build_plan(load_spec(spec_path, data_root=root))
    consumed = handover_keys(trials)  # as the sweep does: only parents keep their handover
    for trial in trials:
        map_key = trial.data_map.key() if trial.data_map else trial.stages[0].key()
        handover = result = None
        for spec in trial.all_stages:
            if store.has(spec.key()):
                handover, result = load_handover(store, spec.key()), store.load_result(spec.key())
                continue
            data_map = store.load_arrays(map_key) if spec.key() != map_key and spec.data_map else None
            handover, result = run_stage(spec, handover if spec.parent else None, result if spec.parent else None,
                                        data_map, store, keep=spec.key() in consumed)


def run_timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])}... failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[2, 4], help="sweep sizes, in seeds (2 trials per seed)")
    p.add_argument("--repeats", type=int, default=1, help="runs of each side per size (median reported)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--in-process", nargs=3, metavar=("SPEC", "DATA_ROOT", "STORE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.in_process:
        in_process(*args.in_process)
        return
    root = str(args.data_root or data_root())

    rows = []
    with tempfile.TemporaryDirectory(prefix="emocal-bench-orch-") as tmp:
        tmp = Path(tmp)
        model = build_tiny_model(tmp / "tiny-encoder")
        for seeds in args.seeds:
            spec_path = tmp / f"orch_{seeds}.yaml"
            spec_path.write_text(yaml.safe_dump(tiny_spec(model, seeds)))
            trials = 2 * seeds
            times = {"sweep": [], "one process": []}
            for r in range(args.repeats):
                work = tmp / f"s{seeds}-r{r}"
                work.mkdir()
                # RAY_ADDRESS=local: a fresh local instance even if another Ray runs on the machine
                env = {**os.environ, "RAY_ADDRESS": "local", "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
                       "RAY_DEDUP_LOGS": "0",
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
                sweep = [sys.executable, "-m", "orchestrator.sweep", str(spec_path), "--data-root", root,
                         "--runs", str(work / "runs"), "--num-cpus", "2", "--no-dashboard"]
                local = [sys.executable, str(Path(__file__).resolve()), "--in-process", str(spec_path), root,
                         str(work / "local-stages")]
                order = [("sweep", sweep), ("one process", local)]
                for name, cmd in (order if r % 2 == 0 else order[::-1]):
                    seconds = run_timed(cmd, work, env)
                    times[name].append(seconds)
                    print(f"  {trials} trials, repeat {r + 1}, {name:11s}: {seconds:6.1f} s", flush=True)
                stages = len((work / "runs" / "bench_orch" / "stages" / "trained.log").read_text().split())
            s, o = median(times["sweep"]), median(times["one process"])
            rows.append((trials, stages, s, o))
            print(f"{trials} trials ({stages} stages trained): sweep {s:.1f} s, one process {o:.1f} s, "
                  f"difference {s - o:.1f} s = {(s - o) / trials:.2f} s per trial (start-up included)")

    if len(rows) >= 2:
        (t1, _, s1, o1), (t2, _, s2, o2) = rows[0], rows[-1]
        marginal = ((s2 - o2) - (s1 - o1)) / (t2 - t1)
        fixed = (s1 - o1) - marginal * t1
        print(f"marginal overhead per trial (slope between {t1} and {t2} trials): {marginal:.2f} s; "
              f"fixed start-up (Ray init, report): {fixed:.1f} s")
        print(f"orchestration tiny-BERT ISEAR sweep, --num-cpus 2, 1 trial at a time: Ray Tune + MLflow cost "
              f"{marginal:.2f} s per extra trial plus {fixed:.1f} s fixed "
              f"({t2} trials: sweep {s2:.1f} s vs one process {o2:.1f} s, {(s2 - o2) / t2:.2f} s/trial all-in)")
    else:
        t, _, s, o = rows[0]
        print(f"orchestration tiny-BERT ISEAR sweep, --num-cpus 2, 1 trial at a time: {t} trials, sweep {s:.1f} s vs "
              f"one process {o:.1f} s -> {(s - o) / t:.2f} s per trial (start-up included)")


if __name__ == "__main__":
    main()
