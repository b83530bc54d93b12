"""Issue 14's before/after figures, old checkout against this one, alternated in one run.

1. The quickstart (`specs/quickstart.yaml`, dashboard on, as the README runs it) in each tree:
   wall time, whether report.csv and report_generations.csv are the same cell for cell, each
   stage's setup share (result["seconds"], as bench/stage_split.py reads it), the stage store's
   bytes on disk, and Ray's object store: its peak use and the bytes ever created in it.
2. A 4-generation CSD chain on the packaged MiniLM (one trial, tiny data): the same store figures
   per trial.
3. full_paper.yaml's stage store, estimated: its unique stages (old: every stage keeps its
   weights) against the stages a student reads (new), at roberta-base's fp32 size counted from
   its config (no hub), plus each kept stage's training-set logits.

The object store is read by a helper process that asks the sweep's own Ray instance (its GCS,
found in the sweep's process tree) every 0.5 s for `object_store_bytes_used` and
`cumulative_created_bytes`.

    python bench/stage_cost.py --old ../w-cost-base [--repeats 1] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from _common import ROOT, data_root
from quickstart import tree
from stage_split import PARTS

POLL = r"""
import sys, time
from ray._private.internal_api import get_memory_info_reply, get_state_from_address
state = None
while True:
    try:  # the GCS may not answer yet (found as soon as Ray's helpers start), or be going away
        state = state or get_state_from_address(sys.argv[1])
        s = get_memory_info_reply(state, timeout_seconds=5).store_stats
        print(s.object_store_bytes_used, s.cumulative_created_bytes, flush=True)
    except Exception as exc:
        print("unanswered", type(exc).__name__, flush=True)
    time.sleep(0.5)
"""

CHAIN4 = {"name": "chain4", "model": "packaged:all-MiniLM-L6-v2", "max_length": 32, "seeds": [0], "generations": 4,
          "methods": ["csd"], "datasets": ["isear"], "data": {"max_train": 96, "max_eval": 60},
          "train": {"epochs": 1, "batch_size": 16, "lr": 3e-4}, "ood": {"percents": [1], "epochs": 1},
          "resources": {"cpus_per_trial": 1}}


def gcs_address(root_pid: int) -> str | None:
    """host:port of the GCS that the sweep started: Ray's helper processes in the sweep's process
    tree (log monitor, autoscaler monitor, dashboard) are given it as --gcs-address."""
    for pid in tree(root_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found = re.search(r"--gcs-address=([\w.-]+:\d+)", cmd)
        if found:
            return found.group(1)
    return None


class StoreSampler(threading.Thread):
    """Peak object-store use and bytes ever created, polled from the sweep's Ray instance."""

    def __init__(self, sweep_pid: int, python: str, env: dict):
        super().__init__(daemon=True)
        self.sweep_pid, self.python, self.env = sweep_pid, python, env
        self.peak_used = self.created = 0
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        address = None
        while address is None and not self.stop.is_set():
            address = gcs_address(self.sweep_pid)
            self.stop.wait(0.5)
        if address is None:
            return
        # Ray's token authentication (on for local instances): ray.init sets RAY_AUTH_MODE for its own
        # children only, so the poller asks for it to send ~/.ray/auth_token; until its first answer
        # (the instance may still be starting) it is started again
        env = {**self.env, "RAY_AUTH_MODE": "token"}
        while not self.stop.is_set():
            poll = subprocess.Popen([self.python, "-c", POLL, address], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
            try:
                for line in poll.stdout:
                    if self.stop.is_set():
                        return
                    parts = line.split()
                    if len(parts) == 2 and parts[0].isdigit():
                        self.samples += 1
                        self.peak_used = max(self.peak_used, int(parts[0]))
                        self.created = max(self.created, int(parts[1]))
                    elif not self.samples:
                        break  # not in yet: a new poller
            finally:
                poll.kill()
                poll.wait()
            self.stop.wait(1.0)


def run_sweep(checkout: Path, spec: Path, workdir: Path, *extra: str) -> dict:
    """One sweep from `checkout` in `workdir` (its own runs/ and MLflow store), timed and sampled."""
    env = {**os.environ, "RAY_ADDRESS": "local", "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
           "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-m", "orchestrator.sweep", str(spec), "--data-root", str(data_root()),
           "--runs", str(workdir / "runs"), *extra]
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(workdir / "sweep.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = StoreSampler(proc.pid, sys.executable, env)
        sampler.start()
        rc = proc.wait()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join(timeout=10)
    if rc != 0:
        sys.exit(f"{checkout}: the sweep failed (exit {rc}); see {workdir / 'sweep.log'}:\n"
                 f"{(workdir / 'sweep.log').read_text()[-3000:]}")
    return {"wall": wall, "run_dir": workdir / "runs" / yaml.safe_load(spec.read_text())["name"],
            "peak_used": sampler.peak_used, "created": sampler.created, "samples": sampler.samples}


def stage_store(run_dir: Path) -> dict:
    """Bytes on disk of the stage store, and how many stages kept weights."""
    stages = [p for p in (run_dir / "stages").iterdir() if (p / "result.json").is_file()]
    weights = [p / "weights.safetensors" for p in stages if (p / "weights.safetensors").is_file()]
    total = sum(f.stat().st_size for p in stages for f in p.rglob("*") if f.is_file())
    return {"stages": len(stages), "with_weights": len(weights), "bytes": total,
            "weight_bytes": sum(w.stat().st_size for w in weights)}


def setup_shares(run_dir: Path) -> dict[str, list[float]]:
    """Setup seconds over the stage's recorded seconds, teachers and students apart."""
    shares: dict[str, list[float]] = {"teacher": [], "student": []}
    for path in sorted((run_dir / "stages").glob("*/result.json")):
        result = json.loads(path.read_text())
        sec = result.get("seconds")
        if sec:
            shares["teacher" if result["generation"] == 1 else "student"].append(
                sec["setup"] / sum(sec.get(x, 0.0) for x in PARTS))
    return shares


def table_differences(old_run: Path, new_run: Path) -> list[str]:
    """Cells that differ between the two runs' report CSVs (none: the same tables)."""
    out = []
    for name in ("report.csv", "report_generations.csv"):
        a, b = ((r / name).read_text().splitlines() for r in (old_run, new_run))
        if len(a) != len(b):
            out.append(f"{name}: {len(a)} rows vs {len(b)}")
        for i, (row_a, row_b) in enumerate(zip(a, b)):
            for j, (x, y) in enumerate(zip(row_a.split(","), row_b.split(","))):
                if x != y:
                    out.append(f"{name} row {i} column {j}: {x} vs {y}")
    return out


def full_paper_estimate() -> dict:
    """full_paper.yaml's stage store at roberta-base size: every unique stage vs the handover stages."""
    import torch
    from transformers import RobertaConfig, RobertaModel

    from orchestrator.plan import build_plan, handover_keys
    from orchestrator.spec import load_spec

    config = RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)
    with torch.device("meta"):
        encoder = RobertaModel(config)
    encoder_values = sum(v.numel() for v in encoder.state_dict().values())
    trials = build_plan(load_spec(str(ROOT / "specs" / "full_paper.yaml"), data_root=str(data_root())))
    unique = {s.key(): s for t in trials for s in t.all_stages}
    kept = handover_keys(trials)
    from trainables.data import load_dataset

    train_rows = {}
    for key in kept:  # each kept stage's training-set logits: rows x labels x 4 bytes (no caps in full_paper)
        data = unique[key].data
        if data not in train_rows:
            ds = load_dataset(data.dataset, data.data_root, split_seed=data.split_seed)
            train_rows[data] = (min(len(ds.train), data.max_train or len(ds.train)), len(ds.labels))
    hidden, weights = config.hidden_size, None
    logits_bytes = 0
    for key in kept:
        rows, labels = train_rows[unique[key].data]
        logits_bytes += rows * labels * 4
    # + the classification head (dense hidden x hidden, out_proj hidden x labels), at the widest label set
    widest = max(n for _, n in train_rows.values())
    weights = 4 * (encoder_values + hidden * hidden + hidden + hidden * widest + widest)
    return {"trials": len(trials), "unique": len(unique), "kept": len(kept), "weight_bytes": weights,
            "old_bytes": len(unique) * weights, "new_bytes": len(kept) * weights + logits_bytes}


def print_runs(title: str, runs: dict[str, list[dict]], shares: bool) -> None:
    """One Markdown row per sweep: time, object store, stage store (and setup shares)."""
    extra = " setup share teachers | setup share students |" if shares else ""
    print(f"\n## {title}")
    print("| tree | wall s | object store peak | object store bytes created | stages with weights | "
          "stage store on disk |" + extra + " store samples |")
    print("|---" * (9 if shares else 7) + "|")
    for side in ("old", "new"):
        for run in runs[side]:
            disk = stage_store(run["run_dir"])
            cells = [side, f"{run['wall']:.1f}", gib(run["peak_used"]), gib(run["created"]),
                     f"{disk['with_weights']} of {disk['stages']}", gib(disk["bytes"])]
            if shares:
                by_kind = setup_shares(run["run_dir"])
                cells += [f"{sum(v) / len(v):.1%}" if v else "-" for v in (by_kind["teacher"], by_kind["student"])]
            print("| " + " | ".join(cells + [str(run["samples"])]) + " |")


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="a checkout of the code before issue 14 (e.g. a worktree of 7e34121)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--keep", help="keep every run folder here (default: a temp folder, removed)")
    p.add_argument("--skip-quickstart", action="store_true")
    args = p.parse_args()
    trees = {"old": Path(args.old).resolve(), "new": ROOT}
    work = Path(args.keep or tempfile.mkdtemp(prefix="emocal-bench-cost-")).resolve()
    quick: dict[str, list[dict]] = {"old": [], "new": []}
    chain: dict[str, list[dict]] = {"old": [], "new": []}
    chain_spec = work / "chain4.yaml"
    work.mkdir(parents=True, exist_ok=True)
    chain_spec.write_text(yaml.safe_dump(CHAIN4))
    for r in range(args.repeats):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for side in order:
            print(f"[{time.strftime('%H:%M:%S')}] chain4 {side} repeat {r}", flush=True)
            chain[side].append(run_sweep(trees[side], chain_spec, work / f"chain4-{side}-{r}", "--num-cpus", "2",
                                         "--no-dashboard"))
        if args.skip_quickstart:
            continue
        for side in order:
            print(f"[{time.strftime('%H:%M:%S')}] quickstart {side} repeat {r}", flush=True)
            quick[side].append(run_sweep(trees[side], trees[side] / "specs" / "quickstart.yaml",
                                         work / f"quickstart-{side}-{r}"))

    print_runs("4-generation CSD chain (MiniLM, one trial)", chain, shares=False)
    if not args.skip_quickstart:
        print_runs("Quickstart", quick, shares=True)
        print("\nWhere the new sweep's time went outside its trials (its sweep_seconds.json; the old code has none):")
        for run in quick["new"]:
            phases = json.loads((run["run_dir"] / "sweep_seconds.json").read_text())
            before = run["wall"] - sum(phases.values())
            print(f"  wall {run['wall']:.1f} s = interpreter start and imports {before:.1f} s + "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
        diffs = table_differences(quick["old"][0]["run_dir"], quick["new"][0]["run_dir"])
        print("\nreport.csv and report_generations.csv, old vs new:",
              "the same cell for cell" if not diffs else f"{len(diffs)} cells differ")
        for d in diffs[:40]:
            print("  ", d)
    estimate = full_paper_estimate()
    print(f"\n## full_paper.yaml stage store (ESTIMATE at roberta-base fp32, {gib(estimate['weight_bytes'])} a stage)")
    print(f"{estimate['trials']} trials, {estimate['unique']} unique stages; old: every one keeps its weights "
          f"-> {estimate['old_bytes'] / 1e9:.0f} GB; new: {estimate['kept']} stages a student reads keep weights and "
          f"training-set logits -> {estimate['new_bytes'] / 1e9:.0f} GB")

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    parts = [f"chain4 object store created old {gib(med([r['created'] for r in chain['old']]))} vs new "
             f"{gib(med([r['created'] for r in chain['new']]))}"]
    if not args.skip_quickstart:
        ratio = med([r["wall"] for r in quick["new"]]) / med([r["wall"] for r in quick["old"]])
        parts.insert(0, f"quickstart wall old {med([r['wall'] for r in quick['old']]):.0f} s vs new "
                        f"{med([r['wall'] for r in quick['new']]):.0f} s (new/old {ratio:.2f}), tables "
                        f"{'identical' if not diffs else 'DIFFER'}")
    parts.append(f"full_paper store est. {estimate['old_bytes'] / 1e9:.0f} GB -> {estimate['new_bytes'] / 1e9:.0f} GB")
    print("\nstage_cost summary: " + "; ".join(parts))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
