"""The quickstart's wall time and peak memory (issue 7.8).

Runs `python -m orchestrator.sweep specs/quickstart.yaml` as the README does, in a fresh
temp folder (MLflow's SQLite store, artifacts and runs/ there; MLFLOW_TRACKING_URI points at
it), and samples the whole process tree (the driver, Ray's GCS/raylet/dashboard and every
worker) from /proc every 0.25 s. Memory is reported two ways: the peak of the summed RSS
(counts libraries shared between workers once per worker, so it overstates) and the peak of
the summed PSS (shared pages split between the processes that map them: the machine's real
footprint). Extra arguments after `--` go to the sweep (e.g. `-- --no-dashboard`).

    python bench/quickstart.py [--data-root DIR] [-- SWEEP ARGS]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT, data_root


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(root_pid: int) -> list[int]:
    kids, out, todo = children_map(), [], [root_pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) if it has gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class TreeSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = tree(self.pid)
            mem = [memory_kib(p) for p in pids]
            self.peak_rss = max(self.peak_rss, sum(m[0] for m in mem))
            self.peak_pss = max(self.peak_pss, sum(m[1] for m in mem))
            self.peak_procs = max(self.peak_procs, sum(1 for m in mem if m[0]))
            self.stop.wait(self.every_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default=str(ROOT / "specs" / "quickstart.yaml"))
    p.add_argument("--data-root", default=None)
    p.add_argument("sweep_args", nargs="*", help="passed to the sweep (after --)")
    args = p.parse_args()
    root = str(args.data_root or data_root())

    with tempfile.TemporaryDirectory(prefix="emocal-bench-quickstart-") as tmp:
        # RAY_ADDRESS=local: a fresh local instance even if another Ray runs on the machine
        env = {**os.environ, "RAY_ADDRESS": "local", "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "orchestrator.sweep", args.spec, "--data-root", root,
               "--runs", str(Path(tmp) / "runs"), *args.sweep_args]
        print("running:", " ".join(cmd), flush=True)
        log = Path(tmp) / "sweep.log"
        start = time.perf_counter()
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
            sampler = TreeSampler(proc.pid)
            sampler.start()
            rc = proc.wait()
        wall = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        text = log.read_text()
        if rc != 0:
            sys.exit(f"the quickstart failed (exit {rc}):\n{text[-4000:]}")
        trained = (Path(tmp) / "runs" / "quickstart" / "stages" / "trained.log").read_text().split()
        report = text[text.find("###"):] if "###" in text else text[-1500:]
        print(report[:2500])
    print(f"exit 0, {len(trained)} stages trained, up to {sampler.peak_procs} processes in the tree")
    print(f"wall time {wall:.1f} s; peak RSS of the process tree (summed) {sampler.peak_rss / 2**20:.2f} GiB; "
          f"peak PSS (summed, shared pages split) {sampler.peak_pss / 2**20:.2f} GiB")
    print(f"quickstart specs/quickstart.yaml on {os.cpu_count()} CPU(s): wall {wall / 60:.1f} min ({wall:.0f} s), "
          f"peak memory {sampler.peak_pss / 2**20:.2f} GiB PSS / {sampler.peak_rss / 2**20:.2f} GiB summed RSS "
          f"across {sampler.peak_procs} processes")


if __name__ == "__main__":
    main()
