"""The H200 cost coefficients (issue 25, part 5): seconds per padded token of each stage kind at
roberta-base size on the paper's datasets, stage tasks per GPU, and eager against compiled/fused.

Two steps, because the GPU machine has torch and transformers but neither the datasets' readers'
dependencies nor a tokeniser of roberta-base (no hub anywhere here):

    python bench/gpu_cost.py lengths            # here: token-length histograms of the real data
    python3 bench/gpu_cost.py measure --out DIR # on the GPU machine (reads the histograms)

`lengths` tokenises the training sets of GoEmotions, Empathetic Dialogues and ISEAR (the paper's
ID datasets, max_length 128 as specs/full_paper.yaml) and the OOD rows each fine-tunes on at 5%,
with the packaged all-MiniLM-L6-v2's WordPiece tokeniser: the real texts' lengths, by a stand-in
for roberta-base's BPE (which cannot be loaded offline). Only the histograms are kept
(bench/raw/token_lengths.json, a few KB), so the GPU machine draws the same multiset of lengths.

`measure` builds a roberta-base-sized encoder from its published config (random weights) under
emocal's own head and runs emocal's own training loop (trainables.train.train) and tasks
(trainables.methods.losses) on random token ids of those lengths, at the paper's batch sizes
(64 / 64 / 32, OOD 8 / 16 / 8), grouped by length as full_paper.yaml trains:

1. per dataset and kind (CE teacher, Sim-MixUp teacher with its two saliency partners, CSD
   student, OOD fine-tuning with its one random ambiguous partner, evaluation): seconds per step,
   padded tokens per step (counted from the batches the loop really collated), seconds per padded
   token, peak GPU memory;
2. 1, 2, 4 and 8 CE trainings at once on the one GPU, each its own process (as Ray's fractional
   GPUs run them): total throughput against one alone, and each process's peak memory;
3. variants of the step: eager attention against SDPA, AdamW's default against fused=True, and
   torch.compile, each on the same seed and batches: seconds per step and how far the trained
   model's validation logits move (bf16 training: a tolerance, not equality);
4. stage set-up and task overhead on this machine: a fresh worker process (Python, torch,
   transformers and trainables imported, CUDA initialised), the model built and its 500 MB of
   weights loaded from and saved to safetensors.

Every result is printed as one line `gpu_cost SECTION: {json}` and appended to DIR/gpu_cost.jsonl
as soon as it is measured, so a run cut short keeps what it finished. The last line is a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LENGTHS = ROOT / "bench" / "raw" / "token_lengths.json"
# the paper's batch sizes (orchestrator/spec.py, PAPER_DEFAULTS): ID training, OOD fine-tuning
DATASETS = {"goemotions": (64, 8), "empathetic_dialogues": (64, 16), "isear": (32, 8)}
OOD_PERCENT = 5.0
# trainables/stage.py's OODConfig defaults, written out: trainables.stage needs scikit-learn and
# matplotlib, which the GPU machine may lack (`lengths` checks they still agree)
OOD_ALPHA, OOD_WEIGHT = 5.0, 0.5


# ---- step 1, here: the length histograms


def lengths_command(args) -> int:
    import dataclasses

    from orchestrator.spec import load_spec
    from orchestrator.plan import build_plan
    from trainables.batching import encode
    from trainables.data import ood_finetune_indices
    from trainables.models import PACKAGED_MINILM, load_tokenizer
    from trainables.stage import OODConfig, prepare_data

    if (OODConfig().alpha, OODConfig().ood_weight) != (OOD_ALPHA, OOD_WEIGHT):
        sys.exit(f"OOD_ALPHA, OOD_WEIGHT are {OOD_ALPHA, OOD_WEIGHT}; OODConfig's defaults changed: update them")
    spec = load_spec(str(ROOT / "specs" / "full_paper.yaml"), data_root=args.data_root)
    configs = {}
    for t in build_plan(spec):
        stage = getattr(t, "all_stages", (None,))[0]
        if stage is not None and stage.data.model == "roberta-base":
            configs.setdefault(stage.data.dataset, stage.data)
    out = {"tokeniser": PACKAGED_MINILM, "max_length": None, "ood_percent": OOD_PERCENT, "datasets": {}}
    tokenizer = load_tokenizer(PACKAGED_MINILM)
    for name, cfg in configs.items():
        cfg = dataclasses.replace(cfg, model=PACKAGED_MINILM)
        out["max_length"] = cfg.max_length
        data = prepare_data(cfg)
        picked = ood_finetune_indices(data.ood_data, OOD_PERCENT, seed=cfg.split_seed)
        pool = data.ood_data.train
        ood = encode([pool.texts[i] for i in picked], pool.labels[picked], tokenizer, cfg.max_length)
        hist = lambda lengths: {str(k): int(v) for k, v in zip(*np.unique(lengths, return_counts=True))}  # noqa: E731
        out["datasets"][name] = {"labels": len(data.id_data.labels), "ood_dataset": str(cfg.ood_dataset),
                                 "train": hist(data.train.lengths), "validation": hist(data.validation.lengths),
                                 "ood_rows": hist(ood.lengths)}
        print(f"{name}: {len(data.train)} training rows, mean length {data.train.lengths.mean():.1f}; "
              f"{len(ood)} OOD rows at {OOD_PERCENT:g}% of {cfg.ood_dataset}")
    LENGTHS.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"written {LENGTHS}")
    return 0


# ---- step 2, on the GPU machine


class Recorder:
    """Prints and appends each result the moment it exists."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "gpu_cost.jsonl"
        self.results: list[dict] = []

    def emit(self, section: str, **values) -> dict:
        row = {"section": section, **values}
        self.results.append(row)
        print(f"gpu_cost {section}: {json.dumps(values, sort_keys=True)}", flush=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        return row


def draw_lengths(hist: dict, n: int | None, seed: int) -> np.ndarray:
    """The histogram's lengths in a random order (all of them, or `n` drawn without replacement)."""
    lengths = np.repeat([int(k) for k in hist], [int(v) for v in hist.values()])
    rng = np.random.default_rng(seed)
    lengths = lengths[rng.permutation(len(lengths))]
    return lengths if n is None else lengths[:n]


def random_rows(lengths: np.ndarray, k: int, seed: int):
    """Encoded rows of random roberta token ids with these lengths (<s> ... </s>, pad id 1)."""
    from trainables.batching import Encoded

    rng = np.random.default_rng(seed)
    ids = tuple(np.concatenate([[0], rng.integers(5, 50000, max(int(n) - 2, 0)), [2]]).astype(np.int64)
                for n in lengths)
    return Encoded(ids=ids, labels=rng.integers(0, k, len(lengths)).astype(np.int64), pad_id=1)


def roberta_sized(k: int, seed: int, attn: str | None = None):
    """emocal's classifier on a roberta-base-sized encoder from its published config (random weights)."""
    import torch
    from transformers import AutoModel

    from trainables.models import EmotionClassifier, encoder_config

    config = encoder_config("roberta-base")
    if os.environ.get("GPU_COST_TINY"):  # the CPU smoke test of this script: same code, a tiny encoder
        config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size = 32, 2, 2, 64
    if attn:
        config._attn_implementation = attn
    torch.manual_seed(seed)
    return EmotionClassifier(AutoModel.from_config(config), k)


class TokenCounter:
    """Counts the padded tokens of every batch the tasks collate (what the cost model prices)."""

    def __init__(self):
        import trainables.methods.losses as losses

        self.losses, self.original, self.tokens, self.calls = losses, losses.collate, 0, 0

        def counting(data, rows, device="cpu"):
            ids, mask = self.original(data, rows, device)
            self.tokens += ids.numel()
            self.calls += 1
            return ids, mask

        losses.collate = counting

    def reset(self) -> None:
        self.tokens = self.calls = 0


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _task(kind: str, n_rows: int, k: int, rng_seed: int, ood_rows: int = 0):
    """The training task of a stage kind, as trainables/stage.py builds it."""
    from trainables.methods.losses import CrossEntropyTask, DistillTask, MixupTask
    from trainables.methods.partners import RandomPartners, SaliencyPartners
    from trainables.methods.registry import get_method

    rng = np.random.default_rng(rng_seed)
    if kind == "ce":
        return CrossEntropyTask()
    if kind == "sim_mixup":  # sim_mixup_csd's teacher: halves of a data map, saliency partners
        recipe = get_method("sim_mixup_csd").teacher
        order = rng.permutation(n_rows)
        easy, ambiguous = np.sort(order[: n_rows // 2]), np.sort(order[n_rows // 2:])
        partners = SaliencyPartners(easy, ambiguous, rng.random((n_rows, k)).astype(np.float32),
                                    recipe.scope, recipe.signed_saliency)
        return MixupTask(partners, recipe.alpha, recipe.main_weight, recipe.layer)
    if kind == "csd_student":
        return DistillTask(rng.normal(size=(n_rows, k)).astype(np.float32) * 3, temperature=1.5)
    if kind == "ood":  # OOD rows first, then the ID rows their partners come from
        ambiguous = ood_rows + rng.choice(n_rows - ood_rows, size=(n_rows - ood_rows) // 2, replace=False)
        return MixupTask(RandomPartners(ambiguous), OOD_ALPHA, OOD_WEIGHT, "features")
    raise ValueError(kind)


def timed_training(model, task, data, rows, batch_size: int, counter: TokenCounter, seed: int = 0,
                   fused: bool | None = None) -> dict:
    """One train() call over `rows`: seconds per step, padded tokens per step, peak memory."""
    import torch

    from trainables.train import TrainConfig, train

    cfg = TrainConfig(epochs=1, batch_size=batch_size, lr=2.5e-5, select="last", group_by_length=True)
    adamw = torch.optim.AdamW
    if fused is not None:
        torch.optim.AdamW = lambda *a, **kw: adamw(*a, **kw, fused=fused)  # noqa: E731
    try:
        counter.reset()
        sync()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        fit = train(model, task, data, None, cfg, seed=seed, rows=rows)
        sync()
        seconds = time.perf_counter() - start
    finally:
        torch.optim.AdamW = adamw
    steps = -(-len(rows) // batch_size)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    return {"steps": steps, "s_per_step": seconds / steps, "tokens_per_step": counter.tokens / steps,
            "s_per_token": seconds / max(counter.tokens, 1), "peak_gib": peak,
            "train_loss": fit.history[-1]["train_loss"]}


def kinds_section(rec: Recorder, hists: dict, dev, steps: int, deadline: float) -> None:
    """Section 1: every stage kind on every dataset (one warm-up call first, per dataset)."""
    import torch

    from trainables.train import predict_logits

    counter = TokenCounter()
    for name, (batch, ood_batch) in DATASETS.items():
        h = hists[name]
        k = h["labels"]
        train_len = draw_lengths(h["train"], None, seed=1)
        ood_len = draw_lengths(h["ood_rows"], None, seed=2)
        data = random_rows(train_len, k, seed=3)
        ood_data = random_rows(ood_len, k, seed=4).concat(data)
        rng = np.random.default_rng(5)
        model = roberta_sized(k, seed=0).to(dev)
        state = {key: v.clone() for key, v in model.state_dict().items()}
        rows = rng.choice(len(data), size=batch * steps, replace=False)
        timed_training(model, _task("ce", len(data), k, 0), data, rows[: batch * 5], batch, counter)  # warm-up
        for kind in ("ce", "sim_mixup", "csd_student", "ood"):
            if time.time() > deadline:
                rec.emit("skipped", dataset=name, kind=kind, why="deadline")
                continue
            for timed_rows in ("warm-up", "timed"):  # the same batches twice: new shapes cost on first sight
                model.load_state_dict(state)
                if kind == "ood":
                    n_ood = min(len(ood_len), ood_batch * steps)
                    r = timed_training(model, _task("ood", len(ood_data), k, 0, len(ood_len)), ood_data,
                                       np.arange(n_ood), ood_batch, counter)
                    bs = ood_batch
                else:
                    some = rows  # the warm-up sees every batch shape the timed pass will
                    r = timed_training(model, _task(kind, len(data), k, 0), data, some, batch, counter)
                    bs = batch
            rec.emit("kind", dataset=name, kind=kind, batch=bs, **r)
        val = random_rows(draw_lengths(h["validation"], None, seed=6), k, seed=7)
        predict_logits(model, val.subset(np.arange(min(256, len(val)))))  # warm-up
        from trainables.batching import collate  # evaluation collates in trainables.train
        import trainables.train as train_module

        tokens = [0]

        def counting(d, r, device="cpu"):
            ids, mask = collate(d, r, device)
            tokens[0] += ids.numel()
            return ids, mask

        train_module.collate = counting
        try:
            sync()
            start = time.perf_counter()
            predict_logits(model, val)
            sync()
            seconds = time.perf_counter() - start
        finally:
            train_module.collate = collate
        rec.emit("kind", dataset=name, kind="evaluation", batch=128, rows=len(val), seconds=seconds,
                 tokens=tokens[0], s_per_token=seconds / tokens[0])
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None


def _concurrent_worker(index: int, steps: int, lengths: list[int], k: int, barrier, queue) -> None:
    """One process of section 2: a CE training on the shared GPU, timed from a common start."""
    import torch

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    counter = TokenCounter()
    data = random_rows(np.asarray(lengths), k, seed=3)
    model = roberta_sized(k, seed=0).to(dev)
    rows = np.arange(len(lengths))
    timed_training(model, _task("ce", len(data), k, 0), data, rows[: 64 * 3], 64, counter)  # warm-up
    barrier.wait()
    start = time.time()
    r = timed_training(model, _task("ce", len(data), k, 0), data, rows[: 64 * steps], 64, counter)
    end = time.time()
    reserved = torch.cuda.max_memory_reserved() / 2**30 if dev.type == "cuda" else 0.0
    queue.put({"index": index, "start": start, "end": end, "reserved_gib": reserved, **r})


def concurrency_section(rec: Recorder, hists: dict, steps: int, levels, deadline: float) -> None:
    """Section 2: 1, 2, 4, 8 CE trainings (GoEmotions, batch 64) at once, each in its own process."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    h = hists["goemotions"]
    lengths = draw_lengths(h["train"], 64 * steps, seed=1).tolist()
    single = None
    for n in levels:
        if time.time() > deadline:
            rec.emit("skipped", concurrent=n, why="deadline")
            continue
        barrier, queue = ctx.Barrier(n), ctx.Queue()
        procs = [ctx.Process(target=_concurrent_worker, args=(i, steps, lengths, h["labels"], barrier, queue))
                 for i in range(n)]
        for p in procs:
            p.start()
        used = []
        results = []
        while len(results) < n and any(p.is_alive() for p in procs):
            try:
                results.append(queue.get(timeout=1.0))
            except Exception:  # noqa: BLE001 - queue.Empty: sample the memory while they train
                used.append(gpu_used_mib())
        for p in procs:
            p.join(timeout=60)
        if len(results) < n:
            rec.emit("concurrent", tasks=n, error=f"{n - len(results)} process(es) failed")
            continue
        span = max(r["end"] for r in results) - min(r["start"] for r in results)
        rate = n * steps / span
        single = single or rate
        rec.emit("concurrent", tasks=n, steps_each=steps, span_s=span, steps_per_s=rate,
                 throughput_vs_one=rate / single, s_per_step_each=[r["s_per_step"] for r in results],
                 reserved_gib_each=[round(r["reserved_gib"], 2) for r in results],
                 gpu_used_mib_peak=max([u for u in used if u is not None], default=None))


def gpu_used_mib() -> int | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout.split()
        return int(out[0]) if out else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def variants_section(rec: Recorder, hists: dict, dev, steps: int, deadline: float) -> None:
    """Section 3: SDPA / eager attention, fused AdamW, torch.compile; same seed and batches."""
    import torch

    from trainables.train import predict_logits

    counter = TokenCounter()
    h = hists["goemotions"]
    k = h["labels"]
    data = random_rows(draw_lengths(h["train"], 64 * steps, seed=1), k, seed=3)
    val = random_rows(draw_lengths(h["validation"], 512, seed=6), k, seed=7)
    rows = np.arange(len(data))
    base_logits = None
    default_attn = roberta_sized(k, seed=0).encoder.config._attn_implementation
    variants = [("default", {}), ("eager_attention", {"attn": "eager"}), ("sdpa_attention", {"attn": "sdpa"}),
                ("fused_adamw", {"fused": True}), ("default_again", {}), ("compile", {"compile": True})]
    for name, v in variants:
        if time.time() > deadline:
            rec.emit("skipped", variant=name, why="deadline")
            continue
        for kind in ("ce", "sim_mixup"):
            model = roberta_sized(k, seed=0, attn=v.get("attn")).to(dev)
            if v.get("compile"):
                model.encoder = torch.compile(model.encoder, dynamic=True)
            try:  # every variant: the same initial weights, 3 warm-up steps, then the timed steps
                start = time.perf_counter()
                warm = timed_training(model, _task(kind, len(data), k, 0), data, rows[: 64 * 3], 64, counter,
                                      fused=v.get("fused"))
                first = time.perf_counter() - start
                r = timed_training(model, _task(kind, len(data), k, 0), data, rows, 64, counter, fused=v.get("fused"))
                logits = predict_logits(model, val)
            except Exception as exc:  # noqa: BLE001 - a variant that does not run is a result too
                rec.emit("variant", variant=name, kind=kind, error=f"{type(exc).__name__}: {exc}"[:500])
                continue
            key = (kind,)
            if name == "default":
                base_logits = {**(base_logits or {}), key: logits}
            diff = float(np.abs(logits - base_logits[key]).max()) if base_logits and key in base_logits else None
            rec.emit("variant", variant=name, kind=kind, attention=v.get("attn") or default_attn,
                     first_call_s=first, warm_steps=warm["steps"], logit_max_abs_diff_vs_default=diff, **r)
            del model
            torch.cuda.empty_cache() if torch.cuda.is_available() else None


def overhead_section(rec: Recorder, dev, out: Path) -> None:
    """Section 4: a fresh worker's start, the model's build, its weights' load and save."""
    import torch
    from safetensors.torch import load_file, save_file

    code = ("import time; t=time.perf_counter(); import torch, transformers, numpy\n"
            "try: import trainables.stage; what = 'trainables.stage'\n"
            "except ImportError: import trainables.train, trainables.methods.losses; what = 'trainables.train'\n"
            "torch.zeros(1, device='cuda' if torch.cuda.is_available() else 'cpu')\n"
            "print(time.perf_counter() - t, what)")
    starts = []
    for _ in range(2):
        t = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        inner, what = (run.stdout.split() + ["nan", run.stderr[-300:]])[:2]
        starts.append({"process_s": time.perf_counter() - t, "imports_and_cuda_s": float(inner), "imported": what})
    t = time.perf_counter()
    model = roberta_sized(28, seed=0)
    built = time.perf_counter() - t
    path = Path("/tmp/gpu_cost_weights.safetensors")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    t = time.perf_counter()
    save_file(state, str(path))
    saved = time.perf_counter() - t
    os.sync()
    t = time.perf_counter()
    model.load_state_dict(load_file(str(path)))
    model.to(dev)
    sync()
    loaded = time.perf_counter() - t
    size = path.stat().st_size
    path.unlink()
    rec.emit("overhead", worker_start=starts, build_from_config_s=built, save_weights_s=saved,
             load_weights_to_device_s=loaded, weight_bytes=size)


def measure_command(args) -> int:
    import torch
    import transformers

    deadline = time.time() + args.budget_s
    rec = Recorder(Path(args.out))
    hists = json.loads(Path(args.lengths).read_text())["datasets"]
    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print("gpu_cost: no CUDA device; run this on the GPU machine (or --allow-cpu to smoke-test)", file=sys.stderr)
        return 2
    dev = torch.device("cuda" if cuda else "cpu")
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip() if cuda else ""
    rec.emit("machine", torch=torch.__version__, cuda=torch.version.cuda, transformers=transformers.__version__,
             device=torch.cuda.get_device_name(0) if cuda else "cpu", nvidia_smi=smi, cpus=os.cpu_count(),
             date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), commit=args.commit)
    sections = args.sections.split(",")
    if "overhead" in sections:
        overhead_section(rec, dev, Path(args.out))
    if "kinds" in sections:
        kinds_section(rec, hists, dev, args.steps, deadline)
    if "concurrent" in sections:
        concurrency_section(rec, hists, args.concurrent_steps, [int(x) for x in args.levels.split(",")], deadline)
    if "variants" in sections:
        variants_section(rec, hists, dev, args.steps, deadline)
    kinds = [r for r in rec.results if r["section"] == "kind"]
    conc = [r for r in rec.results if r["section"] == "concurrent" and "throughput_vs_one" in r]
    print("gpu_cost summary: " + "; ".join(
        [f"{r['dataset']} {r['kind']} {r['s_per_token'] * 1e6:.2f} us/token" for r in kinds]
        + [f"{r['tasks']} at once {r['throughput_vs_one']:.2f}x" for r in conc]), flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("lengths", help="here: token-length histograms of the real data")
    lp.add_argument("--data-root", default=os.environ.get("EMOCAL_DATA", str(ROOT.parent / "shared" / "data")))
    mp_ = sub.add_parser("measure", help="on the GPU machine")
    mp_.add_argument("--out", required=True)
    mp_.add_argument("--lengths", default=str(LENGTHS))
    mp_.add_argument("--steps", type=int, default=40, help="timed training steps per kind and variant")
    mp_.add_argument("--concurrent-steps", type=int, default=60)
    mp_.add_argument("--levels", default="1,2,4,8")
    mp_.add_argument("--sections", default="overhead,kinds,concurrent,variants")
    mp_.add_argument("--budget-s", type=float, default=420, help="sections past this many seconds are skipped")
    mp_.add_argument("--commit", default="unknown")
    mp_.add_argument("--allow-cpu", action="store_true", help="smoke-test on a CPU (tiny steps)")
    args = p.parse_args()
    return lengths_command(args) if args.command == "lengths" else measure_command(args)


if __name__ == "__main__":
    sys.exit(main())
