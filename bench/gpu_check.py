"""What a lent GPU machine says about emocal's GPU path: run it there first, record what it prints.

    python bench/gpu_check.py            # on the GPU machine (torch and transformers only)

The GPU machine has torch and transformers but neither Ray nor MLflow, so this checks the
training side (trainables/) directly, on a roberta-base-sized encoder built from its config
(random weights: no hub) and synthetic token ids:

1. the machine: torch, CUDA, device, bf16 support;
2. evaluation precision (issue 10): `predict_logits` gives fp32 logits even inside a bf16
   autocast region and with TF32 switched on globally; prints how far bf16 evaluation (what
   emocal did before) is from fp32, as logits and as ECE / fitted temperature;
3. `fit_temperature` on CUDA equals the CPU search (tests/test_calibration.py's CUDA test);
4. a training step of `train()`, bf16 autocast against fp32: seconds per step, peak memory
   (what a fractional-GPU trial needs);
5. where Ray is importable (`--ray`; the GPU image lacks it, so the caller brings it), emocal's
   GPU placement (orchestrator/placement.py, the stage tasks' own): four 0.25-GPU tasks against
   one whole-GPU task (throughput ratio), the device each task saw, and the GPU memory still held
   after the tasks end, against Ray's default reusable workers.
Each section prints one line starting with "gpu_check"; the last line is a summary.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables import calibration  # noqa: E402
from trainables.batching import Encoded  # noqa: E402
from trainables.methods.losses import CrossEntropyTask  # noqa: E402
from trainables.models import EmotionClassifier  # noqa: E402
from trainables.train import TrainConfig, autocast, predict_logits, train  # noqa: E402


def emit(section: str, **values) -> dict:
    print(f"gpu_check {section}: {json.dumps(values, sort_keys=True)}", flush=True)
    return values


def roberta_sized(num_labels: int, seed: int) -> EmotionClassifier:
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    encoder = RobertaModel(RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1),
                           add_pooling_layer=False)
    return EmotionClassifier(encoder, num_labels)


def synthetic(n: int, k: int, seed: int, max_len: int = 64) -> Encoded:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, max_len, n)
    ids = [np.concatenate([[0], rng.integers(5, 50000, l - 2), [2]]).astype(np.int64) for l in lengths]
    return Encoded(ids=tuple(ids), labels=rng.integers(0, k, n).astype(np.int64), pad_id=1)


def _placed_training(steps: int, k: int, rendezvous: str, tasks: int) -> dict:
    """One emulated trial: a roberta-sized model trained `steps` steps on the device Ray assigned."""
    from orchestrator.placement import task_device

    device, seen = task_device("auto")
    dev = torch.device(device)
    model = roberta_sized(k, seed=0).to(dev)
    rows = synthetic(32 * steps, k, seed=3)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=2.5e-5, select="last", group_by_length=True)
    Path(rendezvous, str(seen["pid"])).touch()  # start training together: the throughput is of the overlap
    while len(list(Path(rendezvous).iterdir())) < tasks:
        time.sleep(0.01)
    start = time.time()
    train(model, CrossEntropyTask(), rows, None, cfg, seed=0)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    end = time.time()
    del model
    held = torch.cuda.memory_reserved(dev) / 2**20 if dev.type == "cuda" else 0.0  # cached, as a worker keeps it
    return {**seen, "start": start, "end": end, "reserved_mib_after": round(held)}


def _gpu_used_mib() -> int | None:
    if not torch.cuda.is_available():
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=False).stdout.split()
    return int(out[0]) if out else None


def ray_placement(args, k: int) -> dict:
    """Section 5: emocal's stage-task placement on this GPU, through Ray."""
    import tempfile

    import ray

    from orchestrator.placement import StageTask

    torch.cuda.empty_cache()
    ray.init(address="local", num_cpus=8, num_gpus=1 if args.device == "cuda" else 0,
             include_dashboard=False, logging_level="ERROR", object_store_memory=2 * 2**30)
    try:
        placed = StageTask(_placed_training)
        reused = ray.remote(_placed_training)  # Ray's default: GPUs through .options(), workers reused

        def round_(fn, share: float, tasks: int) -> list[dict]:
            with tempfile.TemporaryDirectory() as rendezvous:
                return ray.get([fn(share).remote(args.ray_steps, k, rendezvous, tasks) for _ in range(tasks)])

        gpus = 1 if args.device == "cuda" else 0
        baseline = _gpu_used_mib()
        one = round_(lambda share: placed.options(cpus=1, gpus=share * gpus), 1.0, 1)
        four = round_(lambda share: placed.options(cpus=1, gpus=share * gpus), 0.25, 4)
        time.sleep(2.0)  # let the one-shot workers exit
        after_one_shot = _gpu_used_mib()
        round_(lambda share: reused.options(num_cpus=1, num_gpus=share * gpus), 0.25, 4)
        time.sleep(2.0)
        after_reused = _gpu_used_mib()
    finally:
        ray.shutdown()
    span = lambda r: max(x["end"] for x in r) - min(x["start"] for x in r)  # noqa: E731
    rate_one, rate_four = args.ray_steps / span(one), 4 * args.ray_steps / span(four)
    return emit("ray_placement", steps_per_task=args.ray_steps, batch=32,
                one_whole_gpu_s=round(span(one), 3), four_quarter_gpu_s=round(span(four), 3),
                throughput_ratio=rate_four / rate_one,
                seen=[{key: r[key] for key in ("gpu_ids", "cuda_visible_devices", "device", "pid")} for r in one + four],
                gpu_used_mib={"before": baseline, "after_one_shot_workers": after_one_shot,
                              "after_reused_workers": after_reused},
                after_one_shot_mib=after_one_shot, after_reused_mib=after_reused,
                reserved_mib_in_task_after_training=[r["reserved_mib_after"] for r in four])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2048)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--ray", action="store_true", help="also section 5 (needs Ray importable)")
    p.add_argument("--ray-steps", type=int, default=100, help="training steps per task in section 5")
    p.add_argument("--device", default="cuda", help="cuda; cpu only to smoke-test this script (--rows 64 --steps 2)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; run this on the GPU machine", file=sys.stderr)
        return 2
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, check=False).stdout.strip() if cuda else ""
    import transformers

    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    emit("machine", torch=torch.__version__, cuda=torch.version.cuda, device=name,
         capability=list(torch.cuda.get_device_capability(0)) if cuda else None,
         bf16=cuda and torch.cuda.is_bf16_supported(),
         transformers=transformers.__version__, nvidia_smi=smi, date=time.strftime("%Y-%m-%d %H:%M:%S %Z"))

    # 2. evaluation precision: head scaled so logits reach the magnitudes of a trained model (~6)
    k = 6
    model = roberta_sized(k, seed=0).to(dev)
    with torch.no_grad():
        model.out_proj.weight.mul_(20.0)
    data = synthetic(args.rows, k, seed=1)
    ref = predict_logits(model, data)  # fp32, TF32 off
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        guarded = predict_logits(model, data)  # inside autocast, TF32 on: must still be fp32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    model.eval()
    old = np.empty_like(ref)  # what emocal did before: the forward under bf16 autocast
    order = np.argsort(data.lengths, kind="stable")
    from trainables.batching import collate

    with torch.no_grad():
        for start in range(0, len(order), 128):
            rows = order[start : start + 128]
            ids, mask = collate(data, rows, dev)
            with autocast(dev, True):
                old[rows] = model(ids, mask).float().cpu().numpy()
    # labels drawn from the fp32 model's own probabilities: a calibrated model, ECE near 0
    rng = np.random.default_rng(2)
    probs = calibration.softmax(ref)
    labels = np.array([rng.choice(k, p=p / p.sum()) for p in probs])
    ece = {name: 100 * calibration.expected_calibration_error(calibration.softmax(z), labels)
           for name, z in (("fp32", ref), ("bf16", old))}
    temps = {name: calibration.fit_temperature(z, labels) for name, z in (("fp32", ref), ("bf16", old))}
    prec = emit("eval_precision", rows=args.rows, mean_abs_logit=float(np.abs(ref).mean()),
                guarded_max_abs_diff=float(np.abs(guarded - ref).max()),
                bf16_max_abs_diff=float(np.abs(old - ref).max()), bf16_mean_abs_diff=float(np.abs(old - ref).mean()),
                ece_fp32=ece["fp32"], ece_bf16=ece["bf16"], temperature_fp32=temps["fp32"], temperature_bf16=temps["bf16"],
                argmax_changed=int((old.argmax(1) != ref.argmax(1)).sum()))

    # 3. the temperature search on CUDA = on CPU
    logits_t, labels_t = torch.as_tensor(ref), torch.as_tensor(labels)
    t_cpu, _, e_cpu = calibration.fit_temperature(logits_t, labels_t, return_curve=True)
    t_gpu, _, e_gpu = calibration.fit_temperature(logits_t.to(dev), labels_t.to(dev), return_curve=True)  # noqa: E501
    ts = emit("fit_temperature", t_cpu=t_cpu, t_cuda=t_gpu, max_ece_curve_diff=float(np.abs(e_cpu - e_gpu).max()))

    # 4. training steps: bf16 autocast against fp32, same weights and batches
    timing = {}
    train_rows = synthetic(32 * args.steps, k, seed=3)
    for bf16 in (True, False, True, False):
        m = roberta_sized(k, seed=0).to(dev)
        cfg = TrainConfig(epochs=1, batch_size=32, lr=2.5e-5, select="last", bf16=bf16, group_by_length=True)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        train(m, CrossEntropyTask(), train_rows, None, cfg, seed=0)
        if cuda:
            torch.cuda.synchronize()
        timing.setdefault("bf16" if bf16 else "fp32", []).append(
            ((time.perf_counter() - start) / args.steps, torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0))
        del m
        if cuda:
            torch.cuda.empty_cache()
    step = {k_: min(v[0] for v in vals) for k_, vals in timing.items()}
    mem = {k_: max(v[1] for v in vals) for k_, vals in timing.items()}
    emit("train_step", batch=32, max_len=64, steps=args.steps, s_per_step=step, peak_gib=mem,
         fp32_over_bf16=step["fp32"] / step["bf16"], note="first repeat includes warm-up; min of 2 repeats")

    placed = ray_placement(args, k) if args.ray else None

    ok = prec["guarded_max_abs_diff"] == 0.0 and ts["t_cpu"] == ts["t_cuda"]
    print(f"gpu_check summary: {name}; eval fp32 under autocast+TF32: "
          f"{'exact' if prec['guarded_max_abs_diff'] == 0.0 else 'DIFFERS'}; bf16 eval was off by up to "
          f"{prec['bf16_max_abs_diff']:.3f} (ECE {prec['ece_bf16']:.2f} vs {prec['ece_fp32']:.2f}); temperature search "
          f"CUDA {'=' if ts['t_cpu'] == ts['t_cuda'] else '!='} CPU; train step bf16 {step['bf16'] * 1000:.0f} ms, "
          f"fp32 {step['fp32'] * 1000:.0f} ms ({step['fp32'] / step['bf16']:.2f}x), peak {mem['bf16']:.1f} GiB bf16"
          + (f"; 4 x 0.25-GPU tasks {placed['throughput_ratio']:.2f}x the throughput of one whole-GPU task; "
             f"GPU memory held after tasks end: {placed['after_one_shot_mib']} MiB one-shot workers, "
             f"{placed['after_reused_mib']} MiB reusable workers" if placed else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
