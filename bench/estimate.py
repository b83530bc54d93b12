"""Issue 25's validation: the cost estimate (`emocal plan SPEC --estimate`) against a sweep's measured wall time.

For each spec: the estimate is computed first (this machine's hardware kind, the repo's
coefficients or --coefficients FILE), then the sweep runs (`python -m orchestrator.sweep`, its
own runs folder and MLflow store) timed from outside, with the load average before and after;
printed: estimated vs measured wall, and per stage estimated vs measured seconds (result.json
"seconds" plus the coefficients' task overhead). With --run-folder and --wall an earlier run is
compared instead of running one.

    python bench/estimate.py specs/quickstart.yaml [--isear-full] [--coefficients FILE]
    python bench/estimate.py specs/quickstart.yaml --run-folder runs/quickstart --wall 611
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _common import ROOT, data_root, machine

# a 2-seed, 2-generation ISEAR sweep at full size (no caps on any split), CE teachers and CSD
# students, the quickstart's training settings but one epoch (to fit a working session here)
ISEAR_FULL = {"name": "isear_full", "model": "packaged:all-MiniLM-L6-v2", "max_length": 64, "seeds": [0, 1],
              "generations": 2, "methods": ["ce", "csd"], "datasets": ["isear"], "data": {"split_seed": 13},
              "train": {"epochs": 1, "batch_size": 16, "group_by_length": True, "lr": 3.0e-4},
              "ood": {"percents": [1, 3], "epochs": 2}, "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0}}


def estimate_of(spec_path: Path, coefficients: str | None):
    from orchestrator import cost
    from orchestrator.plan import build_plan
    from orchestrator.spec import load_spec

    spec = load_spec(str(spec_path), data_root=str(data_root()))
    args = argparse.Namespace(coefficients=coefficients, hardware=None, num_cpus=None, num_gpus=None)
    trials = build_plan(spec)
    return spec, trials, cost.plan_estimate(spec, trials, args)


def run_sweep(spec_path: Path, work: Path) -> float:
    env = {**os.environ, "RAY_ADDRESS": "local", "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "orchestrator.sweep", str(spec_path.resolve()), "--data-root", str(data_root()),
           "--runs", str(work / "runs"), "--no-dashboard"]
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(work / "sweep.log", "w") as log:
        rc = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    if rc != 0:
        sys.exit(f"the sweep failed (exit {rc}); see {work / 'sweep.log'}")
    return wall


def compare(name: str, estimate, run_folder: Path, wall: float, load: tuple[float, float] | None) -> str:
    from orchestrator.cost import measured_stages

    measured = measured_stages(run_folder / "stages")
    overhead = estimate.coefficients.stage_overhead_s or 0.0
    print(f"\n## {name}: per stage, estimated vs measured (result.json seconds + {overhead:.1f} s task overhead)")
    print("| stage | estimated s | measured s | measured/estimated |")
    print("|---|---|---|---|")
    for key, est in sorted(estimate.stage_seconds.items()):
        if key in measured:
            m = sum(measured[key]["seconds"].values()) + overhead
            print(f"| {key} | {est:.0f} | {m:.0f} | {m / est:.2f} |")
    error = (estimate.wall_s - wall) / wall if estimate.wall_s else float("nan")  # the goal: |error| <= 25%
    line = (f"{name}: estimated wall {estimate.wall_s:.0f} s, measured {wall:.0f} s (estimate {error:+.0%} of measured, "
            f"{'within' if abs(error) <= 0.25 else 'OUTSIDE'} 25%); "
            + (f"load average {load[0]:.1f} before, {load[1]:.1f} after" if load else "an earlier run: its load is "
               "not known here"))
    print(line)
    return line


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="*", type=Path, help="specs to estimate and run")
    p.add_argument("--isear-full", action="store_true", help="also the 2-seed, 2-generation full-size ISEAR sweep")
    p.add_argument("--coefficients", help="cost coefficients over the repo's (e.g. from emocal plan --calibrate)")
    p.add_argument("--run-folder", type=Path, help="compare this finished run of the (one) spec instead of running it")
    p.add_argument("--wall", type=float, help="with --run-folder: its measured wall seconds")
    p.add_argument("--keep", help="keep the run folders here (default: a temp folder)")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="emocal-bench-estimate-")).resolve()
    specs = list(args.specs)
    if args.isear_full:
        work.mkdir(parents=True, exist_ok=True)
        specs.append(work / "isear_full.yaml")
        specs[-1].write_text(yaml.safe_dump(ISEAR_FULL))
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    lines = []
    for spec_path in specs:
        spec, trials, estimate = estimate_of(spec_path, args.coefficients)
        from orchestrator.cost import format_estimate

        print(f"\n## {spec.name}: the estimate\n{format_estimate(estimate, spec.resources.gpus_per_trial)}")
        before = os.getloadavg()[0]
        if args.run_folder:
            run_folder, wall, load = args.run_folder, args.wall, None
        else:
            wall = run_sweep(spec_path, work / spec.name)
            run_folder, load = work / spec.name / "runs" / spec.name, (before, os.getloadavg()[0])
        lines.append(compare(spec.name, estimate, run_folder, wall, load))
        phases = run_folder / "sweep_seconds.json"
        if phases.is_file():
            print(f"{spec.name} sweep_seconds.json: {json.loads(phases.read_text())}")
    print("\nestimate summary: " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
