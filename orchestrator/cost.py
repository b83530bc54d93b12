"""What a sweep will cost before it runs: compute hours, wall time, disk, object store, GPU memory (issue 25).

The model counts work from what the plan knows (its unique stages, rows per split after the
caps, token lengths of the tokenised data, epochs, batch sizes, OOD percents, the model's size)
and prices it with coefficients measured per hardware kind and encoder, kept with their
provenance in orchestrator/cost_coefficients.yaml:

- training: seconds per padded token through forward, backward and the optimiser step, by
  stage kind (a CE teacher; a MixUp teacher, whose partners go through the encoder beside each
  row, padded to the widest of them; a student), times the padded tokens of every epoch's
  batches (`trainables.train.epoch_batches`, partners drawn at random);
- evaluation: seconds per padded token of `predict_logits` (validation after each epoch,
  validation and test, the training set for a handover, the OOD test before and after each
  fine-tuning);
- OOD fine-tuning: seconds per padded token of its MixUp steps (each OOD row with an ID row);
- per stage: its setup (data, tokeniser, model build) and what no result.json sees (the Ray task's
  start, the write to the store); per sweep: Ray's start, MLflow, the report.

A GPU at the paper's model sizes is launch-bound (bench/gpu_cost.py: a roberta-base step costs
about the same at 1,000 tokens as at 14,000), so a hardware kind may price training, OOD
fine-tuning and evaluation per step (per batch) instead, which needs the rows only: the estimate
of a hub model whose tokeniser is not here still has times. Trials sharing one GPU
(gpus_per_trial < 1) each run slower by the throughput measured for that many (`gpu_sharing`),
and the estimate prints the wall time for every sharing measured, to choose gpus_per_trial by.

Wall time replays the launch order (orchestrator/plan.py, `launch_order`) on the trial slots the
Ray resources give. Disk is counted from the arrays each stage stores (np.savez, uncompressed)
and fp32 weights from the parameter count; nothing is removed while a sweep runs, so the peak
stage store is the final one. A part whose coefficient was never measured is reported as such
and left out of every total that would need it. `emocal plan --calibrate RUN` refits the
coefficients from a finished run's stage seconds (`fit`).
"""
from __future__ import annotations

import dataclasses
import functools
import heapq
import json
import math
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import yaml

COEFFICIENTS_FILE = Path(__file__).with_name("cost_coefficients.yaml")
# stage kinds of the estimate's table, in its order; the first three are training by teacher
# recipe, the rest are parts of every stage
KINDS = ("ce_teacher", "mixup_teacher", "lcl_teacher", "student", "ood_finetune", "evaluation", "overhead")
KIND_NAMES = {"ce_teacher": "CE teacher / data map", "mixup_teacher": "MixUp teachers", "lcl_teacher": "LCL teachers",
              "student": "students", "ood_finetune": "OOD fine-tuning", "evaluation": "evaluation",
              "overhead": "setup and task overhead"}
TRAIN_KINDS = {"none": "ce_teacher", "rand": "mixup_teacher", "ea": "mixup_teacher", "sim": "mixup_teacher",
               "lcl": "lcl_teacher"}
FP32 = 4
ADAM_BYTES_PER_PARAM = 16  # fp32 weights, gradients and AdamW's two moments
# MixUp partners per row through the encoder (trainables/methods/partners.py: n_partners)
PARTNERS = {"rand": 1, "ea": 1, "sim": 2}


class CostError(ValueError):
    """A coefficient file or a run folder that cannot be read; the message names it and the key."""


@dataclass(frozen=True)
class Provenance:
    """Where a set of coefficients comes from."""

    script: str
    machine: str
    date: str
    commit: str
    note: str = ""


@dataclass(frozen=True)
class GpuMemory:
    """One measured peak of a training step (torch's max_memory_allocated, no CUDA context)."""

    peak_gib: float
    params: float  # of the model it was measured on
    tokens_per_step: float  # padded tokens of the step measured
    hidden_x_layers: float  # its hidden size times its layers: activations scale with both


@dataclass(frozen=True)
class Coefficients:
    """Prices of one hardware kind for one encoder; None: not measured."""

    hardware: str
    model: str
    provenance: Provenance
    train_s_per_token: Mapping[str, float] = field(default_factory=dict)  # by TRAIN_KINDS value and "student"
    eval_s_per_token: float | None = None
    ood_s_per_token: float | None = None
    # a GPU at these model sizes is launch-bound: a step costs the same whatever its tokens (up to
    # the widest measured), so its prices are per step (per batch of evaluation); a part priced
    # both ways adds the two
    train_s_per_step: Mapping[str, float] = field(default_factory=dict)
    eval_s_per_batch: float | None = None
    ood_s_per_step: float | None = None
    setup_s: float | None = None
    stage_overhead_s: float | None = None
    sweep_overhead_s: float | None = None
    stage_other_bytes: float | None = None
    trials_at_once: int | None = None  # how many trials shared the machine when it was measured
    gpu_memory: GpuMemory | None = None
    gpu_sharing: Mapping[int, float] = field(default_factory=dict)  # trials on one GPU -> throughput vs one alone

    def to_yaml_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("hardware")
        for name in ("train_s_per_token", "train_s_per_step", "gpu_sharing"):
            d[name] = {k: _sig(v) for k, v in getattr(self, name).items()}
        return {k: _sig(v) for k, v in d.items() if v is not None and v != {}}


def _sig(v):
    """4 significant digits for a measured float (more would be noise); anything else as it is."""
    return float(f"{v:.4g}") if isinstance(v, float) else v


_FIELDS = {f.name for f in dataclasses.fields(Coefficients)} - {"hardware"}


def _parse_entry(hardware: str, raw: object, where: str) -> Coefficients:
    if not isinstance(raw, dict):
        raise CostError(f"{where}.{hardware}: expected a mapping of coefficients, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise CostError(f"{where}.{hardware}: unknown key(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
    for name in ("model", "provenance"):
        if name not in raw:
            raise CostError(f"{where}.{hardware}.{name}: missing (every entry says what it measured and how)")
    try:
        provenance = Provenance(**raw["provenance"])
    except TypeError as exc:
        raise CostError(f"{where}.{hardware}.provenance: {exc}; keys: script, machine, date, commit, note") from None
    gpu = raw.get("gpu_memory")
    try:
        gpu = GpuMemory(**gpu) if gpu is not None else None
    except TypeError as exc:
        raise CostError(f"{where}.{hardware}.gpu_memory: {exc}") from None
    known = set(TRAIN_KINDS.values()) | {"student"}
    train = {}
    for name in ("train_s_per_token", "train_s_per_step"):
        train[name] = raw.get(name) or {}
        if not isinstance(train[name], dict) or set(train[name]) - known:
            raise CostError(f"{where}.{hardware}.{name}: a mapping with keys among {sorted(known)}")
    sharing = raw.get("gpu_sharing") or {}
    if not isinstance(sharing, dict) or not all(isinstance(k, int) and k >= 1 for k in sharing) or sharing.get(1, 1.0) != 1.0:
        raise CostError(f"{where}.{hardware}.gpu_sharing: a mapping of trials on one GPU (1, 2, ...) -> their "
                        "throughput against one trial alone (1: 1.0)")
    return Coefficients(hardware=hardware, **{**raw, "provenance": provenance, "gpu_memory": gpu, **train,
                                              "gpu_sharing": {int(k): float(v) for k, v in sharing.items()}})


def load_coefficients(*paths: str | Path) -> dict[str, Coefficients]:
    """Hardware kind -> its coefficients: the repo's file, then each of `paths` over it."""
    out: dict[str, Coefficients] = {}
    for path in (COEFFICIENTS_FILE, *paths):
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CostError(f"{path}: cannot read the cost coefficients ({exc})") from None
        if not isinstance(raw, dict):
            raise CostError(f"{path}: expected a mapping of hardware kind -> coefficients")
        out.update({hw: _parse_entry(hw, entry, str(path)) for hw, entry in raw.items()})
    return out


def local_hardware(gpus_per_trial: float = 0.0) -> str:
    """This machine's hardware kind as the coefficient file names them: `cpu-2core-amd-epyc`,
    `nvidia-h200` (the first GPU's name, when the trials take GPUs)."""
    if gpus_per_trial:
        try:
            import subprocess

            name = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                  text=True, timeout=10).stdout.splitlines()[0]
            return _slug(name.replace(" ", "-"))
        except (OSError, IndexError, ValueError):
            return "gpu-unknown"
    model = platform.processor() or ""
    try:
        model = next(line.split(":", 1)[1] for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"cpu-{os.cpu_count()}core-{_slug(model) or 'unknown'}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---- the work of a stage, counted from the plan and the tokenised data


@dataclass(frozen=True)
class StageWork:
    """What one stage does and stores, counted before it runs."""

    key: str
    kind: str  # a KINDS training kind: ce_teacher, mixup_teacher, lcl_teacher, student
    train_tokens: float  # padded tokens through forward+backward over all epochs
    validation_tokens: float  # padded tokens of the per-epoch validation inside training
    eval_tokens: float  # validation, test and (kept) training-set logits after training
    ood_eval_tokens: float  # OOD test logits, before and after each fine-tuning
    ood_train_tokens: float  # padded tokens of the OOD fine-tuning steps
    array_bytes: float  # arrays.npz and the logits among the artifacts
    weight_bytes: float  # weights.safetensors (0 when it keeps no handover)
    handover_bytes: float  # weights and training-set logits in the object store (0 without a student)
    # the same work in steps and batches, which need the rows only (never the token lengths)
    train_steps: float = 0.0
    validation_batches: float = 0.0
    eval_batches: float = 0.0
    ood_eval_batches: float = 0.0
    ood_train_steps: float = 0.0


def padded_tokens(lengths: np.ndarray, rows: np.ndarray, batch_size: int, group_by_length: bool,
                  partners: int = 0, partner_pool: np.ndarray | None = None, seed: int = 0) -> float:
    """Padded tokens of one epoch of training batches: each batch, with `partners` partner rows per
    row drawn from `partner_pool` (MixUp), padded to its widest row."""
    from trainables.train import epoch_batches

    rng = np.random.default_rng(seed)
    pool = np.asarray(partner_pool if partner_pool is not None else rows)
    total = 0.0
    for batch in epoch_batches(np.asarray(rows), lengths, batch_size, group_by_length, rng):
        width = lengths[batch].max()
        if partners:
            mates = pool[rng.integers(0, len(pool), size=len(batch) * partners)]
            width = max(width, lengths[mates].max())
        total += len(batch) * (1 + partners) * width
    return float(total)


def eval_tokens(lengths: np.ndarray, batch_size: int) -> float:
    """Padded tokens of `predict_logits`: rows sorted by length, then batched (NaN: lengths unknown)."""
    if len(lengths) and np.isnan(np.asarray(lengths, dtype=float)).any():
        return math.nan
    ordered = np.sort(np.asarray(lengths))
    return float(sum(len(b) * b.max() for b in (ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size))))


def batches(rows: int, batch_size: int) -> int:
    return -(-rows // batch_size)


@functools.lru_cache(maxsize=16)
def _ood_row_count(data_cfg, percent: float) -> int:
    """OOD rows fine-tuned on at `percent` (rows only: no tokeniser needed)."""
    from trainables.data import load_dataset, ood_finetune_indices

    pool = load_dataset(data_cfg.ood_dataset, data_cfg.data_root, split_seed=data_cfg.split_seed)
    return len(ood_finetune_indices(pool, percent, seed=data_cfg.split_seed))


@functools.lru_cache(maxsize=16)
def _ood_rows(data_cfg, percent: float) -> np.ndarray:
    """Token lengths of the OOD rows fine-tuned on at `percent`."""
    from trainables.batching import encode
    from trainables.data import ood_finetune_indices
    from trainables.models import load_tokenizer
    from trainables.stage import prepare_data

    data = prepare_data(data_cfg)
    picked = ood_finetune_indices(data.ood_data, percent, seed=data_cfg.split_seed)
    pool = data.ood_data.train
    rows = encode([pool.texts[i] for i in picked], pool.labels[picked], load_tokenizer(data_cfg.model),
                  data_cfg.max_length)
    return rows.lengths


# the paper's encoders by their published config.json values, so that their size is known with
# no hub access (the rest of each config is transformers' default for the architecture)
@functools.lru_cache(maxsize=16)
def model_config(model: str):
    """The encoder's config: from its folder or the local HF cache (never the network), else its
    published shape (trainables/models.py, HUB_CONFIGS); raises CostError when neither is here."""
    from trainables.models import encoder_config

    try:
        return encoder_config(model)
    except (OSError, ValueError) as exc:
        raise CostError(f"model {model}: its config is not here ({type(exc).__name__}: not in its folder or the "
                        "local Hugging Face cache), so its size is unknown; load it once, or give a local "
                        "folder") from None


def state_bytes(model: str, num_labels: int) -> int:
    """Bytes of a stage's weights.safetensors (trainables/models.py, state_bytes)."""
    from trainables import models

    model_config(model)  # a CostError, not an OSError, for a model whose size is unknown here
    return models.state_bytes(model, num_labels)


def parameter_count(model: str, num_labels: int) -> int:
    """Values of the model's fp32 state dict (encoder from its config, no weights read; our head)."""
    from trainables.models import state_values

    model_config(model)  # a CostError, not an OSError, for a model whose size is unknown here
    return state_values(model, num_labels)


def model_shape(model: str) -> tuple[int, int]:
    """(hidden size, layers) of an encoder."""
    config = model_config(model)
    return config.hidden_size, config.num_hidden_layers


@dataclass(frozen=True)
class _Rows:
    """Token lengths per split (rows only, every length NaN, when the tokeniser is not here)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    ood_test: np.ndarray | None
    labels: int
    tokenised: bool


def _tokeniser_here(model: str) -> None:
    """Raises OSError unless the model's tokeniser loads without the network."""
    from transformers import AutoTokenizer

    from trainables.models import resolve_model_path

    path = resolve_model_path(model)
    if not Path(path).is_dir():
        AutoTokenizer.from_pretrained(path, local_files_only=True)


@functools.lru_cache(maxsize=16)
def split_rows(data_cfg, tokenise: bool = True) -> _Rows:
    """The plan's data after its caps: tokenised as a stage would (`prepare_data`), or only the rows
    counted where the tokeniser cannot be loaded here (a hub model offline) or bytes are all that is
    asked (`tokenise=False`: the disk check, which needs no token lengths)."""
    from trainables.stage import cap_split, id_splits, prepare_data

    try:
        if not tokenise:
            raise OSError("rows only")
        _tokeniser_here(data_cfg.model)
        d = prepare_data(data_cfg)
        return _Rows(d.train.lengths, d.validation.lengths, d.test.lengths,
                     d.ood_test.lengths if d.ood_test is not None else None, len(d.id_data.labels), True)
    except OSError:
        from trainables.data import load_dataset

        ds = load_dataset(data_cfg.dataset, data_cfg.data_root, split_seed=data_cfg.split_seed)
        train, val, test = (np.full(len(split), np.nan) for split in id_splits(data_cfg, ds))
        ood = None
        if data_cfg.ood_dataset is not None:
            pool = load_dataset(data_cfg.ood_dataset, data_cfg.data_root, split_seed=data_cfg.split_seed)
            ood = np.full(len(cap_split(pool.test, data_cfg.max_eval, data_cfg.split_seed)), np.nan)
        return _Rows(train, val, test, ood, len(ds.labels), False)


def stage_work(spec, keep: bool, has_student: bool, tokenise: bool = True) -> StageWork:
    """Count one stage's work and bytes (`spec` a trainables.stage.StageSpec); token counts are
    NaN where the tokeniser is not here or `tokenise` is False."""
    data = split_rows(spec.data, tokenise)
    train_len = data.train
    n_train, k = len(train_len), data.labels
    cfg = spec.train
    if spec.generation > 1:
        kind, partners = "student", 0
    else:
        kind = TRAIN_KINDS[spec.teacher.kind]
        partners = PARTNERS.get(spec.teacher.kind, 0)
    rows = np.arange(n_train)
    train_tokens = cfg.epochs * padded_tokens(train_len, rows, cfg.batch_size, cfg.group_by_length, partners,
                                              seed=spec.seed) if data.tokenised else math.nan
    val_len, test_len = data.validation, data.test
    validation_tokens = cfg.epochs * eval_tokens(val_len, cfg.eval_batch_size) if cfg.select != "last" else 0.0
    evals = eval_tokens(val_len, cfg.eval_batch_size) + eval_tokens(test_len, cfg.eval_batch_size)
    if keep:
        evals += eval_tokens(train_len, cfg.eval_batch_size)
    n_val, n_test = len(val_len), len(test_len)
    array_bytes = (n_val + n_test) * (k * FP32 + 8) * 2  # arrays.npz, and the logits among the artifacts
    array_bytes += 2 * 500 * 8  # the temperature grid and its ECE curve
    if spec.records_data_map:
        array_bytes += cfg.epochs * n_train * (FP32 + 1) + n_train * k * FP32
    ebs = cfg.eval_batch_size
    counts = dict(train_steps=cfg.epochs * batches(n_train, cfg.batch_size),
                  validation_batches=cfg.epochs * batches(len(data.validation), ebs) if cfg.select != "last" else 0,
                  eval_batches=batches(len(data.validation), ebs) + batches(len(data.test), ebs)
                  + (batches(n_train, ebs) if keep else 0))
    ood_eval = ood_train = 0.0
    if spec.ood is not None and data.ood_test is not None:
        ood_len = data.ood_test
        ood_eval = (1 + len(spec.ood.percents)) * eval_tokens(ood_len, cfg.eval_batch_size)
        counts["ood_eval_batches"] = (1 + len(spec.ood.percents)) * batches(len(ood_len), ebs)
        counts["ood_train_steps"] = sum(spec.ood.epochs * batches(_ood_row_count(spec.data, p), spec.ood.batch_size)
                                        for p in spec.ood.percents)
        array_bytes += len(ood_len) * ((1 + len(spec.ood.percents)) * k * FP32 + 8) * 2
        for p in spec.ood.percents:
            if not data.tokenised:
                ood_train = math.nan
                break
            ood_lengths = _ood_rows(spec.data, p)
            joined = np.concatenate([ood_lengths, train_len])
            ood_train += spec.ood.epochs * padded_tokens(
                joined, np.arange(len(ood_lengths)), spec.ood.batch_size, cfg.group_by_length, 1,
                partner_pool=len(ood_lengths) + rows, seed=spec.seed)
    weights = float(state_bytes(spec.data.model, k))
    handover = weights + n_train * k * FP32
    return StageWork(key=spec.key(), kind=kind, train_tokens=train_tokens, validation_tokens=validation_tokens,
                     eval_tokens=evals, ood_eval_tokens=ood_eval, ood_train_tokens=ood_train,
                     array_bytes=array_bytes + (n_train * k * FP32 if keep else 0.0),
                     weight_bytes=weights if keep else 0.0, handover_bytes=handover if has_student else 0.0,
                     **{name: float(v) for name, v in counts.items()})


def plan_work(trials, keep_all: bool = False, tokenise: bool = True,
              exportable: frozenset[str] = frozenset()) -> dict[str, StageWork]:
    """Every unique stage of a chain plan -> its work (an LLM trial's stage is not counted);
    `exportable`: the stages the spec's `export:` keeps the weights of (orchestrator/plan.py, export_keys)."""
    from orchestrator.kinds import kind_of
    from orchestrator.plan import handover_keys

    chains = [t for t in trials if kind_of(t).trains]
    parents = handover_keys(chains)
    unique = {s.key(): s for t in chains for s in t.all_stages}
    return {key: stage_work(s, keep_all or key in parents or key in exportable, key in parents, tokenise)
            for key, s in unique.items()}


# ---- pricing the work


@dataclass(frozen=True)
class StageCost:
    """Seconds of one stage by part; None where a coefficient is missing."""

    train: float | None
    ood: float | None
    evaluation: float | None
    overhead: float | None

    @property
    def total(self) -> float | None:
        parts = (self.train, self.ood, self.evaluation, self.overhead)
        return None if any(p is None for p in parts) else sum(parts)


def _times(per_token: float | None, tokens: float, per_step: float | None = None, steps: float = 0.0) -> float | None:
    """per_token x tokens + per_step x steps, each term where its coefficient exists; None when
    neither exists, or the tokens a per-token price needs are unknown (NaN)."""
    if tokens == 0 and steps == 0:
        return 0.0
    if per_token is None and per_step is None:
        return None
    if per_token is not None and math.isnan(tokens):
        return None
    return (per_token * tokens if per_token is not None else 0.0) + (per_step * steps if per_step is not None else 0.0)


def _plus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def stage_cost(work: StageWork, c: Coefficients) -> StageCost:
    evaluation = _times(c.eval_s_per_token, work.eval_tokens, c.eval_s_per_batch, work.eval_batches)
    train = _plus(_times(c.train_s_per_token.get(work.kind), work.train_tokens, c.train_s_per_step.get(work.kind),
                         work.train_steps),
                  _times(c.eval_s_per_token, work.validation_tokens, c.eval_s_per_batch, work.validation_batches))
    ood = _plus(_times(c.ood_s_per_token, work.ood_train_tokens, c.ood_s_per_step, work.ood_train_steps),
                _times(c.eval_s_per_token, work.ood_eval_tokens, c.eval_s_per_batch, work.ood_eval_batches))
    overhead = None if c.setup_s is None or c.stage_overhead_s is None else c.setup_s + c.stage_overhead_s
    return StageCost(train, ood, evaluation, overhead)


def trial_slots(resources, trials: int, cpus: float, gpus: float) -> int:
    """Trials that run at once on `cpus` CPUs and `gpus` GPUs (a GPU holds 1/gpus_per_trial trials)."""
    slots = math.floor(cpus / resources.cpus_per_trial + 1e-9)
    if resources.gpus_per_trial:
        slots = min(slots, math.floor(gpus / resources.gpus_per_trial + 1e-9))
    if resources.max_concurrent_trials:
        slots = min(slots, resources.max_concurrent_trials)
    return max(0, min(slots, trials))


def simulate_wall(trials, seconds: Mapping[str, float], slots: int, done: frozenset[str] = frozenset()) -> float:
    """Seconds from the first trial's start to the last one's end: trials start in launch order on
    the first free slot; a trial trains each stage not yet claimed, waits for one another trial is
    training, and skips one already stored (`done`)."""
    return schedule(trials, seconds, slots, done)[0]


def schedule(trials, seconds: Mapping[str, float], slots: int,
             done: frozenset[str] = frozenset()) -> tuple[float, dict[str, float]]:
    """`simulate_wall`'s replay: (the end, when each stage is stored)."""
    from orchestrator.plan import launch_order

    if slots < 1:
        return math.inf, {}
    free = [0.0] * slots
    finish: dict[str, float] = {k: 0.0 for k in done}
    end = 0.0
    for trial in launch_order(list(trials)):
        t = heapq.heappop(free)
        for stage in trial.all_stages:
            key = stage.key()
            if key not in finish:
                finish[key] = t + seconds.get(key, 0.0)
            t = max(t, finish[key])
        end = max(end, t)
        heapq.heappush(free, t)
    return end, finish


def store_timeline(chains, work: Mapping[str, StageWork], other: float, finish: Mapping[str, float],
                   readers: Mapping[str, frozenset[str]]) -> tuple[float, float]:
    """(peak, final) bytes the stages add to the store, replayed in the order they are stored: a
    stage adds its files, and a handover's weights go when the last of its `readers` is stored."""
    events = [(finish[k], 0, w.array_bytes + w.weight_bytes + other) for k, w in work.items() if k in finish]
    events += [(max(finish[r] for r in rs), 1, -work[k].weight_bytes)  # removals after same-time additions
               for k, rs in readers.items() if k in work and k in finish and all(r in finish for r in rs)]
    total = peak = 0.0
    for _, _, delta in sorted(events):
        total += delta
        peak = max(peak, total)
    return peak, total


@dataclass(frozen=True)
class Estimate:
    """A sweep's estimated cost; None where a coefficient is missing (see `missing`)."""

    hardware: str
    coefficients: Coefficients | None
    model_matches: bool
    stages: int
    by_kind: Mapping[str, tuple[int, float | None]]  # kind -> (stages, compute seconds)
    compute_s: float | None
    wall_s: float | None
    slots: int
    cpus: float
    gpus: float
    store_bytes: float  # the stage store's peak
    stages_with_weights: int
    weight_bytes: float
    object_store_bytes: float
    gpu_memory_gib: float | None
    missing: tuple[str, ...]
    stage_seconds: Mapping[str, float] = field(default_factory=dict)  # per stage key, where known
    # where some stages cannot be priced: what the priced ones cost (a lower bound of the whole)
    priced_stages: int = 0
    partial_by_kind: Mapping[str, tuple[int, float]] = field(default_factory=dict)  # kind -> (unpriced, seconds)
    partial_compute_s: float | None = None
    partial_wall_s: float | None = None
    slowdown: float | None = 1.0  # each trial's stages on a shared GPU against one alone
    lengths_bounded: bool = False  # token lengths unknown here: GPU memory bounded by max_length
    final_store_bytes: float = 0.0  # once the sweep ends (read handovers' weights removed)
    store_order_timed: bool = False  # the peak replays the estimated stage times (else: all stages equally long)
    wall_by_share: Mapping[float, tuple[int, float]] = field(default_factory=dict)  # gpus_per_trial -> (at once, s)

    def to_dict(self) -> dict:
        c = self.coefficients
        return {"hardware": self.hardware, "coefficients": None if c is None else dataclasses.asdict(c.provenance),
                "model_matches": self.model_matches, "stages": self.stages,
                "by_kind": {k: {"stages": n, "compute_hours": None if s is None else s / 3600}
                            for k, (n, s) in self.by_kind.items()},
                "compute_hours": None if self.compute_s is None else self.compute_s / 3600,
                "wall_hours": None if self.wall_s is None else self.wall_s / 3600,
                "trials_at_once": self.slots, "cpus": self.cpus, "gpus": self.gpus,
                "stage_store_peak_bytes": self.store_bytes, "stage_store_final_bytes": self.final_store_bytes,
                "stages_with_weights": self.stages_with_weights, "weight_bytes": self.weight_bytes,
                "object_store_peak_bytes": self.object_store_bytes, "gpu_memory_gib_per_trial": self.gpu_memory_gib,
                "priced_stages": self.priced_stages,
                "priced_part": None if self.partial_compute_s is None else {
                    "compute_hours": self.partial_compute_s / 3600,
                    "wall_hours": None if self.partial_wall_s is None else self.partial_wall_s / 3600,
                    "by_kind": {k: {"unpriced_stages": u, "compute_hours_of_the_rest": s / 3600}
                                for k, (u, s) in self.partial_by_kind.items()}},
                "gpu_sharing_slowdown": self.slowdown, "missing": list(self.missing)}


def other_bytes(coefficients: Mapping[str, Coefficients]) -> float:
    """A stage's bytes besides its arrays and weights (result.json, checksums, plots): the same on
    any hardware, so the largest measured."""
    return max((c.stage_other_bytes or 0.0 for c in coefficients.values()), default=0.0)


def store_bytes(work: Mapping[str, StageWork], other: float) -> float:
    """Bytes the stages add to the stage store (arrays, weights, the rest per stage)."""
    return sum(w.array_bytes + w.weight_bytes + other for w in work.values())


def gpu_memory_gib(work: Mapping[str, StageWork], trials, c: Coefficients) -> float | None:
    """Peak GPU memory of one trial's training step, scaled from the one measured step: AdamW's
    16 bytes a parameter, plus the measured activations per token x hidden x layers times the
    widest step of the plan."""
    g = c.gpu_memory
    if g is None:
        return None
    activations_per = (g.peak_gib * 2**30 - ADAM_BYTES_PER_PARAM * g.params) / (g.tokens_per_step * g.hidden_x_layers)
    peak = 0.0
    for t in trials:
        stage = t.all_stages[0]
        data = split_rows(stage.data)
        # the widest row of the training set, or (token lengths unknown here) max_length: an upper bound
        widest = int(data.train.max()) if data.tokenised else stage.data.max_length
        params = parameter_count(stage.data.model, data.labels)
        hidden, layers = model_shape(stage.data.model)
        partners = max(PARTNERS.get(s.teacher.kind, 0) if s.generation == 1 else 0
                       for s in t.all_stages)
        step_tokens = stage.train.batch_size * (1 + partners) * widest
        peak = max(peak, ADAM_BYTES_PER_PARAM * params + activations_per * step_tokens * hidden * layers)
    return peak / 2**30


def sharing_slowdown(c: Coefficients, per_gpu: int) -> float | None:
    """How much longer each of `per_gpu` trials sharing one GPU takes than one alone: per_gpu over
    their measured throughput (linear between measured counts); None past the largest measured."""
    if per_gpu <= 1:
        return 1.0
    points = sorted({1: 1.0, **c.gpu_sharing}.items())
    for (n0, t0), (n1, t1) in zip(points, points[1:]):
        if n0 <= per_gpu <= n1:
            return per_gpu / (t0 + (t1 - t0) * (per_gpu - n0) / (n1 - n0))
    return None


def estimate(trials, resources, hardware: str, coefficients: Mapping[str, Coefficients], cpus: float, gpus: float,
             keep_all: bool = False, exportable: frozenset[str] = frozenset()) -> Estimate:
    """Price a plan's stages on `hardware` with `cpus` CPUs and `gpus` GPUs for Ray."""
    from orchestrator.kinds import kind_of
    from orchestrator.plan import releasable_handovers

    chains = [t for t in trials if kind_of(t).trains]
    work = plan_work(chains, keep_all, exportable=exportable)
    c = coefficients.get(hardware)
    missing: list[str] = []
    if len(chains) < len(trials):
        missing.append("LLM rows (no cost model for them)")
    models = {s.data.model for t in chains for s in t.all_stages}
    matches = c is not None and models <= {c.model}
    seconds: dict[str, float] = {}
    by_kind: dict[str, list] = {k: [0, 0.0] for k in KINDS}  # stages, seconds of those priced
    unpriced: dict[str, int] = {k: 0 for k in KINDS}
    other_model: dict[str, int] = {k: 0 for k in KINDS}  # of those, stages of a model never measured here
    model_of = {s.key(): s.data.model for t in chains for s in t.all_stages}
    untokenised = sorted({s.data.model for t in chains for s in t.all_stages if not split_rows(s.data).tokenised})
    if c is None:
        missing.append(f"hardware {hardware}: never measured (known: {', '.join(sorted(coefficients)) or 'none'}); "
                       "calibrate with a small sweep: emocal plan --calibrate RUN_FOLDER")
    elif not matches:
        missing.append(f"model(s) {', '.join(sorted(models - {c.model}))}: {hardware} was measured on {c.model} only")
    for key, w in work.items():
        cost = stage_cost(w, c) if c is not None else StageCost(None, None, None, None)
        if c is not None and model_of[key] != c.model:
            cost = StageCost(None, None, None, None)
        parts = [(w.kind, cost.train, True), ("ood_finetune", cost.ood, w.ood_train_tokens != 0 or w.ood_train_steps != 0),
                 ("evaluation", cost.evaluation, True), ("overhead", cost.overhead, True)]
        for kind, value, counted in parts:
            if counted:
                by_kind[kind][0] += 1
                if value is None:
                    unpriced[kind] += 1
                    other_model[kind] += c is not None and model_of[key] != c.model
                else:
                    by_kind[kind][1] += value
        if cost.total is not None:
            seconds[key] = cost.total
    if c is not None:
        for kind, n in unpriced.items():
            n -= other_model[kind]  # said once, by model, above
            if n:
                why = ("the token lengths it is priced by are unknown here: the tokeniser of "
                       f"{', '.join(untokenised)} cannot be loaded offline" if untokenised else f"no {hardware} coefficient")
                missing.append(f"{KIND_NAMES[kind]}: {n} of {by_kind[kind][0]} stages, {why}")
    elif untokenised:
        missing.append(f"token lengths: the tokeniser of {', '.join(untokenised)} cannot be loaded here (offline); "
                       "disk is counted from the rows")
    shown = {k: (n, s if not unpriced[k] else None) for k, (n, s) in by_kind.items() if n}
    partial = {k: (unpriced[k], s) for k, (n, s) in by_kind.items() if n and unpriced[k] < n}
    complete = len(seconds) == len(work) and c is not None
    compute = sum(seconds.values()) if seconds else None
    slots = trial_slots(resources, len(chains), cpus, gpus)
    slowdown = 1.0
    if resources.gpus_per_trial and gpus and c is not None and c.gpu_sharing:
        per_gpu = max(1, math.ceil(min(1 / resources.gpus_per_trial, slots / gpus) - 1e-9))
        slowdown = sharing_slowdown(c, per_gpu)
        if slowdown is None:
            missing.append(f"wall time: {per_gpu} trials on one GPU were never measured on {hardware} "
                           f"(measured: {', '.join(str(k) for k in sorted(c.gpu_sharing))})")
    wall = None
    if seconds and slots >= 1 and c.sweep_overhead_s is not None and slowdown is not None:
        wall = simulate_wall(chains, {k: v * slowdown for k, v in seconds.items()}, slots) + c.sweep_overhead_s
    elif seconds and slots < 1:
        missing.append(f"wall time: no trial fits {cpus:g} CPU(s) and {gpus:g} GPU(s)")
    by_share = {}  # gpus_per_trial -> wall seconds, for every sharing measured (which share to ask for)
    if seconds and gpus and resources.gpus_per_trial and c.gpu_sharing and c.sweep_overhead_s is not None:
        for per_gpu in sorted({1, *c.gpu_sharing}):
            shared = dataclasses.replace(resources, gpus_per_trial=1 / per_gpu)
            n = trial_slots(shared, len(chains), cpus, gpus)
            factor = sharing_slowdown(c, max(1, math.ceil(min(per_gpu, n / gpus) - 1e-9)))
            if n >= 1 and factor is not None:
                by_share[1 / per_gpu] = (n, simulate_wall(chains, {k: v * factor for k, v in seconds.items()}, n)
                                         + c.sweep_overhead_s)
    handovers = sorted((w.handover_bytes for w in work.values()), reverse=True)
    students = sum(1 for t in chains if len(t.stages) > 1)
    at_once = min(max(slots, 1), students)
    object_store = 2 * at_once * (handovers[0] if handovers else 0.0)  # two handovers per running chain
    other = other_bytes(coefficients)
    # the store's peak replays the schedule: estimated stage times (the mean of those priced for the
    # rest), or, with none priced, every stage equally long, on the trial slots the resources give
    timed = bool(seconds) and slowdown is not None
    mean = sum(seconds.values()) / len(seconds) if seconds else 1.0
    _, finish = schedule(chains, {k: seconds.get(k, mean) * (slowdown if timed else 1.0) for k in work},
                         max(1, slots))
    peak, final = store_timeline(chains, work, other, finish, releasable_handovers(chains, set(exportable), keep_all))
    gpu = None
    if resources.gpus_per_trial and c is not None:
        gpu = gpu_memory_gib(work, chains, c)
        if gpu is None:
            missing.append(f"GPU memory: no {hardware} measurement")
    return Estimate(hardware=hardware, coefficients=c, model_matches=matches, stages=len(work), by_kind=shown,
                    compute_s=compute if complete else None, wall_s=wall if complete else None, slots=slots,
                    cpus=cpus, gpus=gpus,
                    store_bytes=peak, final_store_bytes=final, store_order_timed=timed,
                    stages_with_weights=sum(1 for w in work.values() if w.weight_bytes),
                    weight_bytes=max((w.weight_bytes for w in work.values()), default=0.0),
                    object_store_bytes=object_store, gpu_memory_gib=gpu, missing=tuple(missing),
                    stage_seconds=seconds, priced_stages=len(seconds), partial_by_kind=partial,
                    partial_compute_s=None if complete else compute, partial_wall_s=None if complete else wall,
                    slowdown=slowdown, lengths_bounded=bool(untokenised), wall_by_share=by_share)


def _hours(s: float | None) -> str:
    """h:mm:ss, or why there is no figure."""
    if s is None:
        return "not measured"
    s = round(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def format_estimate(e: Estimate, gpus_per_trial: float) -> str:
    """The estimate's lines under the plan (`emocal plan SPEC --estimate`)."""
    c = e.coefficients
    lines = []
    if c is None:
        lines.append(f"estimate: hardware {e.hardware} has no measured coefficients: no times")
    else:
        p = c.provenance
        lines.append(f"estimate on {e.hardware} (coefficients measured on {c.model}: {p.script}, {p.date}, "
                     f"commit {p.commit}; how: orchestrator/cost_coefficients.yaml)")
    lines.append(f"  {'stage kind':<28}{'stages':>7}  compute (h:mm:ss)"
                 + ("; each stage alone on its GPU" if gpus_per_trial else ""))
    for kind, (n, s) in e.by_kind.items():
        cell = _hours(s)
        if s is None and kind in e.partial_by_kind:
            unpriced, rest = e.partial_by_kind[kind]
            cell = f"{_hours(rest)} for {n - unpriced}; {unpriced} not measured"
        lines.append(f"  {KIND_NAMES[kind]:<28}{n:>7}  {cell}")
    total = _hours(e.compute_s)
    if e.compute_s is None and e.partial_compute_s is not None:
        total = f"not measured; at least {_hours(e.partial_compute_s)} (the {e.priced_stages} stages priced)"
    lines.append(f"  {'total':<28}{e.stages:>7}  {total}")
    where = f"{e.cpus:g} CPU(s), {e.gpus:g} GPU(s): {e.slots} trial(s) at once"
    wall = _hours(e.wall_s)
    if e.wall_s is None and e.partial_wall_s is not None:
        wall = f"not measured; at least {_hours(e.partial_wall_s)} (the stages priced, the rest taken as 0)"
    shown_wall = e.wall_s if e.wall_s is not None else e.partial_wall_s
    lines.append(f"wall time (h:mm:ss) on {where}: {wall}"
                 + (f" (incl. {_hours(c.sweep_overhead_s)} of Ray start, MLflow and report)" if shown_wall and c else ""))
    if c is not None and c.gpu_sharing and gpus_per_trial:
        best = max(c.gpu_sharing, key=lambda k: c.gpu_sharing[k] / 1.0)
        lines.append(f"  trials sharing one GPU, measured on {e.hardware}: "
                     + ", ".join(f"{k}: {v:.2f}x" for k, v in sorted(c.gpu_sharing.items()))
                     + f" one trial's throughput; gpus_per_trial {gpus_per_trial:g} makes each trial's stages "
                     + ("slower by a factor never measured" if e.slowdown is None else f"{e.slowdown:.2f}x as long")
                     + f" (the most throughput measured: {best} per GPU, gpus_per_trial {1 / best:g})")
    if e.wall_by_share:
        lower = "" if e.wall_s is not None else " (at least: the stages priced)"
        lines.append(f"  wall time by resources.gpus_per_trial{lower}: " + ", ".join(
            f"{share:g}: {_hours(s)} ({n} at once)" for share, (n, s) in sorted(e.wall_by_share.items(), reverse=True)))
    if c is not None and c.trials_at_once and e.wall_s is not None and c.trials_at_once != e.slots \
            and not (c.gpu_sharing and gpus_per_trial):
        lines.append(f"  (measured with {c.trials_at_once} trial(s) at once; {e.slots} at once may share the "
                     "machine differently)")
    order = (("the estimated schedule" + ("" if e.compute_s is not None else "; stages not priced taken at the mean"))
             if e.store_order_timed else "launch order, every stage taken as equally long")
    lines.append(f"stage store: peak {gb(e.store_bytes)} ({order}), final {gb(e.final_store_bytes)} "
                 f"({e.stages_with_weights} of {e.stages} stages store fp32 weights, {e.weight_bytes / 1e6:.0f} MB "
                 "each; a student's teacher's are removed once every student reading them is stored, unless "
                 "export: or --keep-all-weights keeps them)")
    lines.append(f"object store peak: {gb(e.object_store_bytes)} (two handovers per running chain with a student)")
    if not gpus_per_trial:
        lines.append("GPU memory per trial: none (resources.gpus_per_trial is 0)")
    else:
        lines.append("GPU memory per trial: " + ("not measured" if e.gpu_memory_gib is None else
                                                 f"{e.gpu_memory_gib:.1f} GiB (scaled from one measured step"
                                                 + ("; rows taken at max_length, the token lengths being unknown "
                                                    "here: an upper bound)" if e.lengths_bounded else ")")))
    lines += [f"not estimated: {m}" for m in e.missing]
    return "\n".join(lines)


# ---- the disk preflight


def disk_shortfall(needed_bytes: float, free_bytes: float, folder: Path) -> str | None:
    """Why a sweep needing `needed_bytes` more in the stage store cannot start where `free_bytes`
    are free on `folder`'s filesystem; None when it fits."""
    if needed_bytes <= free_bytes:
        return None
    return (f"the sweep's stage store needs an estimated {gb(needed_bytes)} more, but the filesystem of {folder} has "
            f"{gb(free_bytes)} free; free some space, pass --runs DIR on a larger disk, or start anyway with "
            "--ignore-disk-check")


def stored_keys(store_root: Path, keys) -> frozenset[str]:
    """The stages already in the store (a resumed sweep or a shared store needs no room for them)."""
    return frozenset(k for k in keys if (Path(store_root) / k / "result.json").is_file())


def needed_store_bytes(trials, store_root: Path, reuse: bool, keep_all: bool,
                       exportable: frozenset[str] = frozenset()) -> float:
    """Bytes a sweep adds to its stage store at its peak: its unique stages not stored yet, less the
    handover weights removed once their students are stored (each trial's own store with
    --no-reuse, where nothing is counted as removed)."""
    from orchestrator.kinds import kind_of
    from orchestrator.plan import releasable_handovers
    from orchestrator.trial import trial_store_root

    chains = [t for t in trials if kind_of(t).trains]
    work = plan_work(chains, keep_all, tokenise=False, exportable=exportable)  # bytes need rows, not token lengths
    other = other_bytes(load_coefficients())
    total = 0.0
    if reuse:  # the peak of the stages not stored yet, all trials at once (the most handovers alive)
        done = stored_keys(store_root, work)
        new = {k: w for k, w in work.items() if k not in done}
        _, finish = schedule(chains, {k: 1.0 for k in work}, max(1, len(chains)))
        return store_timeline(chains, new, other, finish, releasable_handovers(chains, set(exportable), keep_all))[0]
    for t in chains:
        root = trial_store_root(store_root, False, t.key)
        keys = [s.key() for s in t.all_stages]
        done = stored_keys(root, keys)
        total += sum(work[k].array_bytes + work[k].weight_bytes + other for k in keys if k not in done)
    return total


def free_bytes(folder: Path) -> float:
    """Free bytes on the filesystem that holds `folder` (its nearest existing parent)."""
    import shutil

    path = Path(folder)
    while not path.exists():
        path = path.parent
    return float(shutil.disk_usage(path).free)


# ---- calibration from a finished run


def measured_stages(store_root: Path) -> dict[str, dict]:
    """Stage key -> its result.json, for every stage of a run's store that recorded its seconds."""
    out = {}
    for path in sorted(Path(store_root).glob("*/result.json")):
        result = json.loads(path.read_text())
        if result.get("seconds"):
            out[result["key"]] = result
    return out


def _ratio(pairs: list[tuple[float, float]]) -> float | None:
    """Least squares through the origin weighted by 1/x: sum(y) / sum(x)."""
    xs = sum(x for x, _ in pairs)
    return None if xs <= 0 else max(0.0, sum(y for _, y in pairs) / xs)


def fit(trials, results: Mapping[str, dict], hardware: str, model: str, provenance: Provenance,
        trials_phase_s: float | None, sweep_overhead_s: float | None, slots: int,
        stored_bytes: Mapping[str, float] | None = None) -> Coefficients:
    """Coefficients from a run's measured stage seconds (result.json "seconds"), and per stage the
    task overhead that makes the replayed schedule last the run's measured trials phase."""
    work = plan_work(trials)
    measured = {k: w for k, w in work.items() if k in results}
    if not measured:
        raise CostError("none of the run's stages recorded its seconds (result.json 'seconds'); "
                        "run a sweep with this version first")
    sec = {k: results[k]["seconds"] for k in measured}
    evaluation = _ratio([(w.eval_tokens, sec[k]["evaluate"]) for k, w in measured.items()])
    e = evaluation or 0.0
    train = {}
    for kind in set(TRAIN_KINDS.values()) | {"student"}:
        pairs = [(w.train_tokens, sec[k]["train"] - e * w.validation_tokens) for k, w in measured.items()
                 if w.kind == kind]
        if pairs and (value := _ratio(pairs)) is not None:
            train[kind] = value
    ood = _ratio([(w.ood_train_tokens, sec[k].get("ood", 0.0) - e * w.ood_eval_tokens) for k, w in measured.items()])
    setup = float(np.mean([s["setup"] for s in sec.values()]))
    c = Coefficients(hardware=hardware, model=model, provenance=provenance, train_s_per_token=train,
                     eval_s_per_token=evaluation, ood_s_per_token=ood, setup_s=setup, stage_overhead_s=0.0,
                     sweep_overhead_s=sweep_overhead_s, trials_at_once=slots)
    if stored_bytes:
        other = [stored_bytes[k] - w.array_bytes for k, w in measured.items() if k in stored_bytes]  # weights apart
        c = dataclasses.replace(c, stage_other_bytes=float(np.mean(other)) if other else None)
    if trials_phase_s is None or len(measured) < len(work):
        return c
    # the task overhead o: replay(o) = the measured trials phase; replay grows with o, so bisect
    def replay(o: float) -> float:
        priced = dataclasses.replace(c, stage_overhead_s=o)
        return simulate_wall(trials, {k: stage_cost(w, priced).total or 0.0 for k, w in work.items()}, slots)

    lo, hi = 0.0, max(1.0, trials_phase_s)
    if replay(lo) >= trials_phase_s:
        return c
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if replay(mid) < trials_phase_s else (lo, mid)
    return dataclasses.replace(c, stage_overhead_s=round((lo + hi) / 2, 3))


# ---- the command line: `emocal plan SPEC --estimate`, `emocal plan --calibrate RUN`


def available_gpus() -> int:
    """GPUs `nvidia-smi -L` lists here (0 without one); Ray's default for a local instance."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def plan_estimate(spec, trials, args) -> Estimate:
    """The estimate `emocal plan SPEC --estimate` prints: on --num-cpus/--num-gpus (default: this
    machine's), priced for --hardware (default: this machine's kind)."""
    coefficients = load_coefficients(*([args.coefficients] if args.coefficients else []))
    hardware = args.hardware or local_hardware(spec.resources.gpus_per_trial)
    cpus = args.num_cpus if args.num_cpus is not None else float(os.cpu_count() or 1)
    gpus = args.num_gpus if args.num_gpus is not None else float(available_gpus())
    return estimate(trials, spec.resources, hardware, coefficients, cpus, gpus,
                    keep_all=getattr(args, "keep_all_weights", False), exportable=exportable(spec, trials))


def exportable(spec, trials) -> frozenset[str]:
    """The stages whose weights the spec's `export:` keeps."""
    from orchestrator.kinds import kind_of
    from orchestrator.plan import export_keys

    return frozenset(export_keys([t for t in trials if kind_of(t).trains], spec.export))


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _stage_dir_bytes(path: Path) -> float:
    """A stored stage's bytes besides its weights (a teacher's may have been removed since)."""
    from trainables.store import WEIGHTS

    return float(sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != WEIGHTS))


def calibrate(run_folder: Path, data_root: str, hardware: str | None, cpus: float | None) -> tuple[Coefficients, Path]:
    """Fit the coefficients of this machine from a finished run folder; written to
    RUN/cost_coefficients.yaml, for `emocal plan SPEC --estimate --coefficients` that file."""
    import datetime
    import time

    from orchestrator.plan import build_plan
    from orchestrator.spec import load_spec

    run_folder = Path(run_folder)
    spec_path = run_folder / "spec.yaml"
    if not spec_path.is_file():
        raise CostError(f"{run_folder}: no spec.yaml, so not a sweep's run folder (give runs/NAME)")
    spec = load_spec(str(spec_path), data_root=data_root)
    trials = build_plan(spec)
    results = measured_stages(run_folder / "stages")
    phases_path = run_folder / "sweep_seconds.json"
    phases = json.loads(phases_path.read_text()) if phases_path.is_file() else {}
    trials_phase = phases.get("trials")
    overhead = sum(v for k, v in phases.items() if k != "trials") if phases else None
    models = sorted({s.data.model for t in trials for s in getattr(t, "all_stages", ())})
    hardware = hardware or local_hardware(spec.resources.gpus_per_trial)
    cpus = float(cpus if cpus is not None else os.cpu_count() or 1)
    slots = trial_slots(spec.resources, len(trials), cpus, float(available_gpus()))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    provenance = Provenance(
        script=f"emocal plan --calibrate ({spec.name} run)", machine=f"{hardware}, {os.cpu_count()} CPU(s)",
        date=datetime.date.today().isoformat(), commit=_commit(),
        note=f"{len(results)} stages, {slots} trial(s) at once; load average {load:.1f} when calibrated "
             f"({time.strftime('%H:%M')}; the run's own load is not recorded)")
    stored = {k: _stage_dir_bytes(run_folder / "stages" / k) for k in results}
    c = fit(trials, results, hardware, models[0] if len(models) == 1 else ",".join(models), provenance,
            trials_phase, overhead, slots, stored)
    out = run_folder / "cost_coefficients.yaml"
    out.write_text(yaml.safe_dump({hardware: c.to_yaml_dict()}, sort_keys=False))
    return c, out


def calibrate_command(args) -> int:
    """`emocal plan --calibrate RUN`: fit, write, print."""
    import sys

    try:
        c, out = calibrate(Path(args.calibrate), str(args.data_root), args.hardware, args.num_cpus)
    except CostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump({c.hardware: c.to_yaml_dict()}, sort_keys=False), end="")
    print(f"written to {out}; use it with: emocal plan SPEC --estimate --coefficients {out}")
    return 0


def disk_preflight(trials, run_folder: Path, store_root: Path, reuse: bool, keep_all: bool,
                   exportable: frozenset[str] = frozenset()) -> tuple[str | None, str]:
    """(why the sweep must not start, or None; the line that says what was compared)."""
    needed = needed_store_bytes(trials, store_root, reuse, keep_all, exportable)
    free = free_bytes(run_folder)
    return disk_shortfall(needed, free, run_folder), (f"disk check: the stage store needs an estimated {gb(needed)} "
                                                      f"more; {gb(free)} free on the filesystem of {run_folder}")
