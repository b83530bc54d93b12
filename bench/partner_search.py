"""Sim-MixUp partner search at GoEmotions scale: matrix products against a per-sample loop (issue 7.5).

28,000 rows of random saliency over 6 classes (GoEmotions' Ekman labels), split at random
into 14,000 easy and 14,000 ambiguous. The vectorised search is `similarity_partners` in
both directions (easy queries against ambiguous candidates, and the reverse), as
`SaliencyPartners` with scope "half" does. The loop is what one writes per sample: numpy
cosine of the query's saliency against every candidate (candidates normalised once, outside
the loop, a favour to the loop), then argmax and argmin. The loop runs on a 2,000-query
subset (1,000 per direction) and is extrapolated linearly to 28,000 queries; its answers
are checked against the vectorised ones on that subset (equal, or a tie within 1e-6 cosine).
Same thread count for both (default 1, torch and numpy's BLAS). The vectorised search is
timed at several `chunk` sizes (queries per block; `similarity_partners` takes 64 on CPU,
where it runs in numpy, and 4096 on a GPU, in torch): the (chunk x 14,000) similarity block
is written and read back twice (argmax, argmin), so its size decides whether the search runs
from cache or from memory.

    python bench/partner_search.py [--n 28000] [--k 6] [--subset 2000] [--repeats 5] [--threads 1] [--chunks 64 256 1024]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import median, set_threads, timed
from threadpoolctl import threadpool_limits

from trainables.methods.partners import similarity_partners


def vectorised(table, easy, ambiguous, chunk: int | None = None):
    return (similarity_partners(table, easy, ambiguous, chunk=chunk),
            similarity_partners(table, ambiguous, easy, chunk=chunk))


def loop(table: np.ndarray, queries: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cand = table[candidates]
    cand = cand / np.maximum(np.linalg.norm(cand, axis=1, keepdims=True), 1e-12)
    best, worst = np.empty(len(queries), np.int64), np.empty(len(queries), np.int64)
    for j, i in enumerate(queries):
        q = table[i] / max(np.linalg.norm(table[i]), 1e-12)
        sims = cand @ q
        best[j], worst[j] = candidates[sims.argmax()], candidates[sims.argmin()]
    return best, worst


def check(table: np.ndarray, queries, candidates, vec_pair, loop_pair) -> tuple[int, int]:
    """(exact matches, matches up to a 1e-6 cosine tie) over both argmax and argmin."""
    def cos(a, b):
        return float(table[a] @ table[b] / (np.linalg.norm(table[a]) * np.linalg.norm(table[b])))

    exact = tie = 0
    for vec, lp in zip(vec_pair, loop_pair):
        for q, v, l in zip(queries, vec, lp):
            if v == l:
                exact += 1
            elif abs(cos(q, v) - cos(q, l)) < 1e-6:
                tie += 1
    return exact, tie


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=28000)
    p.add_argument("--k", type=int, default=6)
    p.add_argument("--subset", type=int, default=2000, help="loop queries (half per direction)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch and numpy BLAS threads for both")
    p.add_argument("--chunks", type=int, nargs="+", default=[64, 256, 1024],
                   help="similarity_partners chunk sizes to time (4096 is its default, the headline)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    threads = set_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS too, so the loop gets no extra threads

    rng = np.random.default_rng(args.seed)
    # |softmax - onehot| of random logits: saliency rows as training produces them
    logits = rng.normal(size=(args.n, args.k)) * 2
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    gold = rng.integers(0, args.k, size=args.n)
    table_np = np.abs(probs - np.eye(args.k)[gold]).astype(np.float32)
    perm = rng.permutation(args.n)
    easy_np, amb_np = np.sort(perm[: args.n // 2]), np.sort(perm[args.n // 2:])
    table, easy, amb = torch.from_numpy(table_np), torch.from_numpy(easy_np), torch.from_numpy(amb_np)
    half = args.subset // 2
    print(f"torch {torch.__version__}, {threads} thread(s); saliency table {args.n} x {args.k}, "
          f"{len(easy_np)} easy / {len(amb_np)} ambiguous, loop on {2 * half} queries, {args.repeats} repeats")

    def loop_subset():
        return loop(table_np, easy_np[:half], amb_np), loop(table_np, amb_np[:half], easy_np)

    vectorised(table, easy, amb), loop_subset()  # warm-up
    vec_t, loop_t = {c: [] for c in args.chunks}, []
    for r in range(args.repeats):
        order = [(c, lambda c=c: vectorised(table, easy, amb, c)) for c in args.chunks] + [("loop", loop_subset)]
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            seconds, out = timed(fn)
            if name == "loop":
                loop_t.append(seconds)
                loop_out = out
            else:
                vec_t[name].append(seconds)
                if name == args.chunks[0]:
                    vec_out = out
                else:  # every chunk size gives the same partners
                    assert all(torch.equal(a, b) for x, y in zip(out, vec_out) for a, b in zip(x, y))

    (vb_e, vw_e), (vb_a, vw_a) = vec_out
    (lb_e, lw_e), (lb_a, lw_a) = loop_out
    e1, t1 = check(table_np, easy_np[:half], amb_np, (vb_e[:half].numpy(), vw_e[:half].numpy()), (lb_e, lw_e))
    e2, t2 = check(table_np, amb_np[:half], easy_np, (vb_a[:half].numpy(), vw_a[:half].numpy()), (lb_a, lw_a))
    answers = 4 * half
    exact, ties = e1 + e2, t1 + t2
    print(f"answers checked: {answers} (argmax and argmin of {2 * half} queries): {exact} identical, {ties} ties "
          f"within 1e-6 cosine, {answers - exact - ties} different")
    assert exact + ties == answers, "the loop and similarity_partners disagree beyond ties"

    vec_s = median(vec_t[args.chunks[0]])
    loop_s = median(loop_t)
    loop_full = loop_s * args.n / (2 * half)
    for c in args.chunks:
        print(f"similarity_partners chunk {c:5d}, all {args.n} queries: median {median(vec_t[c]):.3f} s  "
              f"all {[round(t, 3) for t in vec_t[c]]}")
    print(f"per-sample loop, {2 * half} queries:        median {loop_s:.3f} s  all {[round(t, 3) for t in loop_t]}")
    print(f"per-sample loop extrapolated to {args.n}: {loop_full:.2f} s ({loop_s / (2 * half) * 1e6:.1f} us/query)")
    best = min(args.chunks, key=lambda c: median(vec_t[c]))
    print(f"partner_search {args.n}x{args.k}, {threads} thread(s): similarity_partners (chunk {args.chunks[0]}) "
          f"{vec_s:.2f} s vs per-sample loop {loop_full:.2f} s (extrapolated from {2 * half}) -> "
          f"loop/vectorised {loop_full / vec_s:.2f}x; chunk {best}: {median(vec_t[best]):.2f} s "
          f"({loop_full / median(vec_t[best]):.2f}x); answers equal on the subset ({exact} identical, {ties} ties)")


if __name__ == "__main__":
    main()
