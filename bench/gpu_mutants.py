"""The GPU-only mutants, checked where they can be: on a GPU machine.

    python3 bench/gpu_mutants.py        # on the GPU machine, from the repository root

mutmut runs on this project's CPU-only machines, where a line that only acts on a CUDA device
never runs, so its mutants survive there (docs/testing.md, "GPU only"). This applies each such
mutation (the kinds mutmut makes: an argument set to None or dropped, `and`/`or` swapped, `==`
to `!=`, a string or number changed) to its file in turn, runs the tests that guard the line on
the GPU, and puts the file back. Prints one line per mutant and a summary line.

    python3 bench/gpu_mutants.py --mutmut bench/gpu_only_mutants.txt   # mutmut's own GPU-only survivors
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PARTNERS = "trainables/methods/partners.py"
TRAIN = "trainables/train.py"
PARTNER_TEST = ["tests/test_methods.py::test_a_gpu_table_is_searched_on_the_gpu_with_the_cpu_searchs_answer"]
TRAIN_TESTS = ["tests/test_gpu.py"]
SEARCH = "return _search_torch(table, queries, candidates, chunk or 4096)"
CAST = 'if bf16 and device.type == "cuda" and torch.cuda.is_bf16_supported():'


def variants(prefix: str, path: str, line: str, tests: list[str], edits: dict[str, tuple[str, str]]) -> list[tuple]:
    """Mutants of one line: each edit replaces a piece of it (old -> new)."""
    return [(f"{prefix}: {name}", path, line, line.replace(old, new), tests) for name, (old, new) in edits.items()]


# (name, file, original text, mutated text, tests that should fail)
MUTANTS = [
    *variants("partners", PARTNERS, SEARCH, PARTNER_TEST, {
        "table None": ("(table,", "(None,"), "queries None": (" queries,", " None,"),
        "candidates None": (" candidates,", " None,"), "chunk None": ("chunk or 4096", "None"),
        "table dropped": ("(table, ", "("), "queries dropped": (" queries,", ""),
        "candidates dropped": (" candidates,", ""), "chunk dropped": (", chunk or 4096", ""),
        "or -> and": ("chunk or", "chunk and"), "4096 -> 4097": ("4096", "4097")}),
    *variants("partners", PARTNERS, 'if table.device.type == "cpu":', PARTNER_TEST, {"device test == -> !=": ("==", "!=")}),
    *variants("train", TRAIN, 'return torch.device("cuda" if torch.cuda.is_available() else "cpu")', TRAIN_TESTS, {
        "auto device XXcudaXX": ('"cuda" if', '"XXcudaXX" if'),
        "auto device cpu/cuda swapped": ('"cuda" if torch.cuda.is_available() else "cpu"',
                                         '"cpu" if torch.cuda.is_available() else "cuda"')}),
    *variants("train", TRAIN, CAST, TRAIN_TESTS, {
        "autocast bf16 and -> or": ("bf16 and", "bf16 or"), "autocast == cuda -> !=": ('== "cuda"', '!= "cuda"'),
        "autocast XXcudaXX test": ('"cuda"', '"XXcudaXX"'), "autocast bf16-support and -> or": ('"cuda" and', '"cuda" or')}),
    *variants("train", TRAIN, 'return torch.autocast("cuda", dtype=torch.bfloat16)', TRAIN_TESTS, {
        "autocast device XXcudaXX": ('"cuda"', '"XXcudaXX"'), "autocast dtype None": ("torch.bfloat16", "None"),
        "autocast dtype dropped": ("dtype=torch.bfloat16", "")}),
    *variants("train", TRAIN, "torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False",
              TRAIN_TESTS, {"full precision leaves TF32 on": ("False", "True")}),
    *variants("train", TRAIN, "torch.autocast(device.type, enabled=False)", TRAIN_TESTS,
              {"evaluation under autocast": ("False", "True")}),
]


# mutmut's own GPU-only survivors (`mutmut show NAME` of each, docs/testing.md), run with --mutmut
GUARDS = {"trainables/calibration.py": ["tests/test_gpu.py", "tests/test_calibration.py::test_fit_temperature_on_gpu"],
          "trainables/train.py": ["tests/test_gpu.py"]}


def from_mutmut_show(text: str) -> list[tuple]:
    """Mutants from `mutmut show` output: each a one-hunk diff whose old lines (context and '-')
    occur once in the file and become the new lines (context and '+')."""
    mutants = []
    for block in text.split("# trainables.")[1:]:
        name = block.split(":", 1)[0]
        lines = block.splitlines()
        path = next(line[4:].strip() for line in lines if line.startswith("+++ "))
        body = lines[next(i for i, line in enumerate(lines) if line.startswith("@@")) + 1:]
        old = "\n".join(line[1:] for line in body if line[:1] in (" ", "-"))
        new = "\n".join(line[1:] for line in body if line[:1] in (" ", "+"))
        mutants.append((f"mutmut {name}", path, old, new, GUARDS[path]))
    return mutants


def passes(tests: list[str]) -> bool:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, capture_output=True, text=True)
    return done.returncode == 0


def main() -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mutmut", help="run the mutants in this file of `mutmut show` output instead of the list "
                                    "above (bench/gpu_only_mutants.txt: the survivors docs/testing.md calls GPU only)")
    args = p.parse_args()
    mutants = from_mutmut_show(Path(args.mutmut).read_text()) if args.mutmut else MUTANTS
    if not torch.cuda.is_available():
        print("gpu_mutants: no CUDA device here; run it on a GPU machine")
        return 2
    tests = sorted({t for *_, ts in mutants for t in ts})
    if not passes(tests):
        print("gpu_mutants: the tests fail on the unmutated code; nothing to measure")
        return 1
    killed = []
    for name, path, original, mutated, guards in mutants:
        source = ROOT / path
        text = source.read_text()
        assert text.count(original) == 1, f"{path} changed: update the mutant {name!r} in bench/gpu_mutants.py"
        try:
            source.write_text(text.replace(original, mutated))
            survived = passes(guards)
        finally:
            source.write_text(text)
        killed.append(not survived)
        print(f"gpu_mutants {name}: {'survived' if survived else 'killed'}", flush=True)
    print(f"gpu_mutants summary: {sum(killed)} of {len(killed)} killed on {torch.cuda.get_device_name(0)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
