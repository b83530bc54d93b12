"""What every benchmark shares: the repo on sys.path, the data root, timing helpers.

Ratios are measured in one run, side by side, and reported as medians over repeats; each
benchmark alternates the two contenders so a noisy neighbour hits both alike.
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def data_root() -> Path:
    """--data-root's default: $EMOCAL_DATA, else ../shared/data beside the repo (as the tests do)."""
    root = Path(os.environ.get("EMOCAL_DATA", ROOT.parent / "shared" / "data")).expanduser().resolve()
    if not (root / "isear").is_dir():
        sys.exit(f"no datasets at {root}; set EMOCAL_DATA or pass --data-root")
    return root


def timed(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median(xs) -> float:
    return statistics.median(xs)


def machine() -> str:
    return f"{platform.node()} {os.cpu_count()} CPU(s), Python {platform.python_version()}"


def set_threads(n: int | None) -> int:
    """Torch intra-op threads for every contender of a benchmark (same for both sides)."""
    import torch

    if n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
