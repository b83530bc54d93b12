"""The GPU-only mutants of `similarity_partners`, checked where they can be: on a GPU machine.

    python3 bench/gpu_mutants.py        # on the GPU machine, from the repository root

mutmut runs on this project's CPU-only machines, where the line that sends a GPU table to the
torch search never runs, so its mutants survive there (docs/testing.md, "GPU only"). This applies
each mutation of that line (the ones mutmut makes: an argument set to None or dropped, `or` to
`and`, 4096 to 4097; and the device test `==` to `!=`) to partners.py in turn, runs the CUDA test
`test_a_gpu_table_is_searched_on_the_gpu_with_the_cpu_searchs_answer` against it, and puts the
file back. Prints one line per mutant and a summary line.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "trainables" / "methods" / "partners.py"
TEST = "tests/test_methods.py::test_a_gpu_table_is_searched_on_the_gpu_with_the_cpu_searchs_answer"
LINE = "return _search_torch(table, queries, candidates, chunk or 4096)"
MUTANTS = {
    "table None": LINE.replace("(table,", "(None,"),
    "queries None": LINE.replace(" queries,", " None,"),
    "candidates None": LINE.replace(" candidates,", " None,"),
    "chunk None": LINE.replace("chunk or 4096", "None"),
    "table dropped": LINE.replace("(table, ", "("),
    "queries dropped": LINE.replace(" queries,", ""),
    "candidates dropped": LINE.replace(" candidates,", ""),
    "chunk dropped": LINE.replace(", chunk or 4096", ""),
    "or -> and": LINE.replace("chunk or", "chunk and"),
    "4096 -> 4097": LINE.replace("4096", "4097"),
    'device test == -> !=': None,  # the test line, below
}


def run_test() -> bool:
    """True when the test passes (the mutant survives)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", TEST],
                          cwd=ROOT, capture_output=True, text=True)
    return done.returncode == 0


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_mutants: no CUDA device here; run it on a GPU machine")
        return 2
    original = SOURCE.read_text()
    assert LINE in original, "partners.py changed: update bench/gpu_mutants.py"
    if not run_test():
        print("gpu_mutants: the test fails on the unmutated code; nothing to measure")
        return 1
    killed = []
    try:
        for name, line in MUTANTS.items():
            if line is None:
                mutated = original.replace('if table.device.type == "cpu":', 'if table.device.type != "cpu":')
            else:
                mutated = original.replace(LINE, line)
            assert mutated != original, name
            SOURCE.write_text(mutated)
            survived = run_test()
            killed.append(not survived)
            print(f"gpu_mutants {name}: {'survived' if survived else 'killed'}", flush=True)
    finally:
        SOURCE.write_text(original)
    print(f"gpu_mutants summary: {sum(killed)} of {len(killed)} killed on {torch.cuda.get_device_name(0)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
