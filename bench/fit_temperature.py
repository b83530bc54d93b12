"""Time `fit_temperature` (whole grid at once) against a Python loop over the grid (issue 4).

Both search the 500 temperatures 0.01..5.00 (docs/method.md, Temperature scaling) on the same
random 5,000 x 8 logits with the same ECE (10 equal-width bins): the loop calls
``expected_calibration_error(softmax(logits, T), labels)`` once per T, exactly what a
notebook would write. Prints medians over repeats, checks both pick the same T, and ends
with a one-line summary holding the ratio.

    python bench/fit_temperature.py [--n 5000] [--k 8] [--repeats 7] [--device cpu|cuda] [--threads N]

``--threads`` sets torch's intra-op CPU threads for both (default: torch's own choice).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainables.calibration import (  # noqa: E402
    expected_calibration_error,
    fit_temperature,
    softmax,
    temperature_grid,
)


def loop_fit(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The obvious Python loop over the grid: ties go to the smallest T (first minimum)."""
    best_t, best_e = None, float("inf")
    for t in temperature_grid():
        e = expected_calibration_error(softmax(logits, t), labels)
        if e < best_e - 1e-12:
            best_t, best_e = float(t), e
    return best_t


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up (allocator, lazy imports, CUDA context)
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="samples")
    parser.add_argument("--k", type=int, default=8, help="classes")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median reported)")
    parser.add_argument("--device", default="cpu", help="where the logits live (cpu or cuda)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads for both")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    logits_np = rng.normal(size=(args.n, args.k)) * 3
    # Labels drawn from softmax(logits / 2) so the optimum sits inside the grid (T near 2).
    cum = softmax(logits_np, 2.0).cumsum(axis=1)
    labels_np = np.minimum((rng.uniform(size=(args.n, 1)) > cum).sum(axis=1), args.k - 1)
    logits = torch.as_tensor(logits_np, device=args.device)
    labels = torch.as_tensor(labels_np, device=args.device)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}, "
          f"logits {args.n} x {args.k}, grid {len(temperature_grid())} temperatures, {args.repeats} repeats")
    vec_s, vec_t = median_seconds(lambda: fit_temperature(logits, labels), args.repeats)
    loop_s, loop_t = median_seconds(lambda: loop_fit(logits, labels), args.repeats)
    print(f"vectorised fit_temperature: median {vec_s * 1000:8.1f} ms  T = {vec_t}")
    print(f"python loop over the grid:  median {loop_s * 1000:8.1f} ms  T = {loop_t}")
    assert vec_t == loop_t, f"different T: vectorised {vec_t}, loop {loop_t}"
    print(f"fit_temperature {args.n}x{args.k}, 500 T on {args.device}, {torch.get_num_threads()} thread(s): vectorised {vec_s * 1000:.1f} ms vs "
          f"loop {loop_s * 1000:.1f} ms -> {loop_s / vec_s:.1f}x faster, same T = {vec_t}")


if __name__ == "__main__":
    main()
