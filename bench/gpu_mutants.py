"""The GPU-only mutants, checked where they can be: on a GPU machine.

    python3 bench/gpu_mutants.py        # on the GPU machine, from the repository root

mutmut runs on this project's CPU-only machines, where a line that only acts on a CUDA device
never runs, so its mutants survive there (docs/testing.md, "GPU only"). This applies each such
mutation (the kinds mutmut makes: an argument set to None or dropped, `and`/`or` swapped, `==`
to `!=`, a string or number changed) to its file in turn, runs the tests that guard the line on
the GPU, and puts the file back. Prints one line per mutant and a summary line.
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

# (name, file, original text, mutated text, tests that should fail)
MUTANTS = [
    ("partners: table None", PARTNERS, SEARCH, SEARCH.replace("(table,", "(None,"), PARTNER_TEST),
    ("partners: queries None", PARTNERS, SEARCH, SEARCH.replace(" queries,", " None,"), PARTNER_TEST),
    ("partners: candidates None", PARTNERS, SEARCH, SEARCH.replace(" candidates,", " None,"), PARTNER_TEST),
    ("partners: chunk None", PARTNERS, SEARCH, SEARCH.replace("chunk or 4096", "None"), PARTNER_TEST),
    ("partners: table dropped", PARTNERS, SEARCH, SEARCH.replace("(table, ", "("), PARTNER_TEST),
    ("partners: queries dropped", PARTNERS, SEARCH, SEARCH.replace(" queries,", ""), PARTNER_TEST),
    ("partners: candidates dropped", PARTNERS, SEARCH, SEARCH.replace(" candidates,", ""), PARTNER_TEST),
    ("partners: chunk dropped", PARTNERS, SEARCH, SEARCH.replace(", chunk or 4096", ""), PARTNER_TEST),
    ("partners: or -> and", PARTNERS, SEARCH, SEARCH.replace("chunk or", "chunk and"), PARTNER_TEST),
    ("partners: 4096 -> 4097", PARTNERS, SEARCH, SEARCH.replace("4096", "4097"), PARTNER_TEST),
    ("partners: device test == -> !=", PARTNERS, 'if table.device.type == "cpu":',
     'if table.device.type != "cpu":', PARTNER_TEST),
    ("train: auto device XXcudaXX", TRAIN, 'torch.device("cuda" if', 'torch.device("XXcudaXX" if', TRAIN_TESTS),
    ("train: auto device cpu/cuda swapped", TRAIN, '"cuda" if torch.cuda.is_available() else "cpu"',
     '"cpu" if torch.cuda.is_available() else "cuda"', TRAIN_TESTS),
    ("train: autocast bf16 and -> or", TRAIN, CAST, CAST.replace("bf16 and", "bf16 or"), TRAIN_TESTS),
    ("train: autocast == cuda -> !=", TRAIN, CAST, CAST.replace('== "cuda"', '!= "cuda"'), TRAIN_TESTS),
    ("train: autocast XXcudaXX test", TRAIN, CAST, CAST.replace('"cuda"', '"XXcudaXX"'), TRAIN_TESTS),
    ("train: autocast bf16-support and -> or", TRAIN, CAST, CAST.replace('"cuda" and', '"cuda" or'), TRAIN_TESTS),
    ("train: autocast device XXcudaXX", TRAIN, 'return torch.autocast("cuda", dtype=torch.bfloat16)',
     'return torch.autocast("XXcudaXX", dtype=torch.bfloat16)', TRAIN_TESTS),
    ("train: autocast dtype None", TRAIN, 'return torch.autocast("cuda", dtype=torch.bfloat16)',
     'return torch.autocast("cuda", dtype=None)', TRAIN_TESTS),
    ("train: autocast dtype dropped", TRAIN, 'return torch.autocast("cuda", dtype=torch.bfloat16)',
     'return torch.autocast("cuda", )', TRAIN_TESTS),
    ("train: full precision leaves TF32 on", TRAIN,
     "torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False",
     "torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True", TRAIN_TESTS),
    ("train: evaluation under autocast", TRAIN, "torch.autocast(device.type, enabled=False)",
     "torch.autocast(device.type, enabled=True)", TRAIN_TESTS),
]


def passes(tests: list[str]) -> bool:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, capture_output=True, text=True)
    return done.returncode == 0


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_mutants: no CUDA device here; run it on a GPU machine")
        return 2
    tests = sorted({t for *_, ts in MUTANTS for t in ts})
    if not passes(tests):
        print("gpu_mutants: the tests fail on the unmutated code; nothing to measure")
        return 1
    killed = []
    for name, path, original, mutated, guards in MUTANTS:
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
