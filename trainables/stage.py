"""One stage of a chain: train one generation, evaluate it ID and OOD, fine-tune it on OOD data.

Algorithm 2 of the paper, one step at a time: generation 1 is the teacher (plain CE, or a
MixUp recipe that needs a data map); generation g >= 2 is a born-again student distilled from
generation g-1 with T = 1 (SD) or the teacher's validation-ECE-optimal T (CSD). Every
generation is evaluated on the ID validation and test sets (raw and temperature-scaled), on
the OOD test set without fine-tuning, and after OOD fine-tuning at each percentage
(section 4.4). A stage is a pure function of its `StageSpec`, whose hash is its key.

What a generation hands its student (`Handover`: its weights and its fp32 training-set logits,
the distillation targets) is made only when a student may read it (`keep`): the last generation
of a chain keeps neither, and a student never builds a model of its teacher (issue 14). A stage
stored without one and trained again for a later student stores its handover beside it
(`late_handovers`), so a restart does not train it a third time.

Plain Python: no Ray, no MLflow. orchestrator/trial.py runs it as a Ray task.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trainables import calibration, plots
from trainables.batching import Encoded, encode
from trainables.cartography import DataMap
from trainables.data import PreparedDataset, Split, UserDatasetSpec, load_dataset, ood_finetune_indices
from trainables.methods.losses import CrossEntropyTask, DistillTask, LabelAwareContrastiveTask, MixupTask
from trainables.methods.partners import OtherSubsetPartners, RandomPartners, SaliencyPartners, saliency
from trainables.methods.registry import DistillConfig, MixupConfig
from trainables.models import build_model, load_tokenizer, state_to_numpy
from trainables.store import StageStore
from trainables.train import TrainConfig, pick_device, predict_logits, set_seed, train

_logger = logging.getLogger(__name__)

# What a stage computes, as a number in every stage key: bump it whenever a change to the code
# changes a stage's outcome for the same StageSpec (a new metric, evaluation precision, a loss's
# form), so that no stored stage and no MLflow run of the old semantics is reused.
# tests/test_stage_keys.py pins the config schema to this number: adding or changing a field
# fails there until the field is in the key (or named in KEY_EXEMPT) and the schema is re-pinned.
# 2: fp32 evaluation logits; calibration.n_bins applies to the reported ECE.
# 3: the lcl teacher recipe (teacher.lcl_ce_weight, teacher.lcl_temperature), its own data map.
# 4: electra_lcl as its authors ran it: a second view of every text (teacher.lcl_second_view, the
#    synonym copy), random batches, selection on validation accuracy (train.select: val_accuracy).
STAGE_FORMAT_VERSION = 4
# fields that say where a stage runs, where its files lie or how long its chain is: never what it computes
KEY_EXEMPT = ("device", "data.data_root", "distill.generations")


def without_paths(payload: dict, paths) -> dict:
    """`payload` (a nested dict, changed in place) without the dotted `paths`: a stage key leaves them out."""
    for path in paths:
        *parents, leaf = path.split(".")
        node = payload
        for name in parents:
            node = node[name]
        node.pop(leaf)
    return payload


@dataclass(frozen=True)
class DataConfig:
    """Which data a chain trains and evaluates on, and how much of it (quickstart subsamples).

    Caps are stratified draws with `split_seed`, the same for every training seed.
    """

    dataset: str | UserDatasetSpec
    ood_dataset: str | UserDatasetSpec | None
    data_root: str
    model: str
    max_length: int = 128
    split_seed: int = 13
    max_train: int | None = None
    max_eval: int | None = None
    fingerprint: str = ""  # hash of the raw data files (trainables.data.data_fingerprint)

    @classmethod
    def from_dict(cls, d: dict) -> "DataConfig":
        """From `dataclasses.asdict` (a user dataset comes back as its spec, labels as a tuple)."""
        data = dict(d)
        for k in ("dataset", "ood_dataset"):
            if isinstance(data.get(k), dict):
                data[k] = UserDatasetSpec(**{**data[k], "labels": tuple(data[k]["labels"])})
        return cls(**data)


@dataclass(frozen=True)
class OODConfig:
    """OOD fine-tuning (section 4.4): from every generation, `epochs` on p% of the OOD data.

    Each OOD sample is mixed (features, lam ~ Beta(alpha, alpha)) with a random ambiguous ID
    sample; loss = ood_weight * CE(OOD) + (1 - ood_weight) * CE(mix), i.e. the OOD rows and
    their mixes count equally by default. Evaluated without temperature scaling.
    """

    percents: tuple[float, ...] = (1.0, 3.0, 5.0)  # the OOD training set's shares fine-tuned on, one model each
    epochs: int = 4  # passes over the p% of OOD data
    batch_size: int = 8  # OOD rows per step (section 4.4)
    lr: float | None = None  # fine-tuning learning rate; None: the ID learning rate
    alpha: float = 5.0  # lam ~ Beta(alpha, alpha) of each OOD/ID mix
    ood_weight: float = 0.5  # weight of the OOD rows' CE; the mixes get the rest


@dataclass(frozen=True)
class StageSpec:
    """Everything that determines one generation's outcome; its hash is the stage key."""

    generation: int
    seed: int
    data: DataConfig
    train: TrainConfig
    teacher: MixupConfig  # generation 1's recipe
    distill: DistillConfig  # how generation >= 2 learns from its parent
    parent: str | None = None  # key of generation - 1
    data_map: str | None = None  # key of the stage whose training dynamics give the data map
    ood: OODConfig | None = field(default_factory=OODConfig)
    n_bins: int = 10
    device: str = "auto"

    @property
    def records_data_map(self) -> bool:
        """The plain-CE teacher is the data-map run (docs/method.md, Data maps: a data map depends only on
        dataset, model, seed and training settings, so it is this stage, computed once); an
        LCL teacher maps its own run (MixupConfig.is_own_data_map)."""
        return self.generation == 1 and self.teacher.is_own_data_map

    def key(self) -> str:
        # computed once per object and format (a plan asks tens of thousands of times; the fields are frozen)
        version, key = self.__dict__.get("_key", (None, None))
        if version != STAGE_FORMAT_VERSION:
            key = self._key_of_fields()
            object.__setattr__(self, "_key", (STAGE_FORMAT_VERSION, key))
        return key

    def _key_of_fields(self) -> str:
        payload = without_paths(dataclasses.asdict(self), KEY_EXEMPT)  # where it runs, where the files lie
        payload["format"] = STAGE_FORMAT_VERSION
        if self.generation > 1:
            payload.pop("teacher")  # a student depends on its teacher only through `parent`
        else:
            payload.pop("distill")
        blob = json.dumps(payload, sort_keys=True, default=str)
        return f"g{self.generation}-" + hashlib.sha256(blob.encode()).hexdigest()[:20]

    @classmethod
    def from_dict(cls, d: dict) -> "StageSpec":
        d = dict(d)
        d["data"] = DataConfig.from_dict(d["data"])
        d["train"] = TrainConfig(**d["train"])
        d["teacher"] = MixupConfig(**d["teacher"])
        d["distill"] = DistillConfig(**d["distill"])
        if d.get("ood") is not None:
            d["ood"] = OODConfig(**{**d["ood"], "percents": tuple(d["ood"]["percents"])})
        return cls(**d)


@dataclass(frozen=True)
class Handover:
    """What a student needs of its parent: the weights (to pass on, or export) and the parent's
    fp32 logits on the training rows, computed by the parent with its model still loaded."""

    weights: dict[str, np.ndarray]
    train_logits: np.ndarray


# what a stage that keeps its handover stores, as named in result["kept"]
HANDOVER_PARTS = ("weights", "train_logits")
# a stored stage never changes, so the handover of one stored without it (trained again later
# for a new student) goes into a store of its own beside the stages: <stages>/handovers/<key>/
LATE_HANDOVERS = "handovers"


class HandoverMismatchError(RuntimeError):
    """A stage trained again for its weights did not reproduce its stored numbers."""


def late_handovers(store: StageStore) -> StageStore:
    """Where the handovers of stages first stored without one are kept."""
    return StageStore(store.root / LATE_HANDOVERS)


def load_handover(store: StageStore, key: str) -> Handover | None:
    """A stored stage's handover, or None when it has none (nothing was to read it when it ran)."""
    if tuple(store.load_result(key).get("kept", ())) == HANDOVER_PARTS and not store.weights_released(key):
        return Handover(store.load_weights(key), store.load_arrays(key)["train_logits"])
    if (store.root / LATE_HANDOVERS / key).is_dir():  # opening a StageStore makes its folder: look first
        late = late_handovers(store)
        if late.has(key) and not late.weights_released(key):
            return Handover(late.load_weights(key), late.load_arrays(key)["train_logits"])
    return None


@dataclass
class PreparedData:
    """Tokenised ID and OOD data of one DataConfig."""

    id_data: PreparedDataset
    train: Encoded
    validation: Encoded
    test: Encoded
    ood_data: PreparedDataset | None
    ood_test: Encoded | None
    train_texts: tuple[str, ...] = ()  # the texts of `train`, row for row (the LCL row's synonym copies)


def cap_split(split: Split, limit: int | None, seed: int) -> Split:
    """A stratified subsample of at most `limit` rows (all rows when limit is None)."""
    if limit is None or len(split) <= limit:
        return split
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(split)), train_size=limit, random_state=seed, stratify=split.labels)
    return split.subset(np.sort(keep))


def id_splits(cfg: DataConfig, ds: PreparedDataset | None = None) -> tuple[Split, Split, Split]:
    """The ID train, validation and test rows a stage of `cfg` trains and is evaluated on, as texts
    (an export checks its model on the same test rows)."""
    ds = ds if ds is not None else load_dataset(cfg.dataset, cfg.data_root, split_seed=cfg.split_seed)
    return (cap_split(ds.train, cfg.max_train, cfg.split_seed),
            *(cap_split(s, cfg.max_eval, cfg.split_seed) for s in (ds.validation, ds.test)))


@functools.lru_cache(maxsize=4)
def prepare_data(cfg: DataConfig) -> PreparedData:
    """Load, cap and tokenise once per process. A sweep calls it once per dataset and hands the
    result to every stage through Ray's object store (orchestrator/trial.py, `prepare_data_task`),
    so a one-shot GPU worker does not prepare it again."""
    tokenizer = load_tokenizer(cfg.model)
    ds = load_dataset(cfg.dataset, cfg.data_root, split_seed=cfg.split_seed)

    def enc(split: Split) -> Encoded:
        return encode(split.texts, split.labels, tokenizer, cfg.max_length)

    train_split, val, test = id_splits(cfg, ds)
    ood = ood_test = None
    if cfg.ood_dataset is not None:
        ood = load_dataset(cfg.ood_dataset, cfg.data_root, split_seed=cfg.split_seed)
        if tuple(ood.labels) != tuple(ds.labels):
            raise ValueError(f"OOD dataset {ood.name} labels {ood.labels} are not in the order of {ds.name}'s {ds.labels}")
        ood_test = enc(cap_split(ood.test, cfg.max_eval, cfg.split_seed))
    return PreparedData(ds, enc(train_split), enc(val), enc(test), ood, ood_test, train_split.texts)


def _metrics(prefix: str, logits: np.ndarray, labels: np.ndarray, n_bins: int, temperature: float | None = None) -> dict:
    """calibration_report under `prefix_`; with a temperature, the scaled ECE as `prefix_ece_ts`."""
    out = {f"{prefix}_{k}": v for k, v in calibration.calibration_report(logits, labels, n_bins=n_bins).items()}
    if temperature is not None:
        scaled = calibration.calibration_report(logits, labels, temperature=temperature, n_bins=n_bins)
        out[f"{prefix}_ece_ts"] = scaled["ece"]
    return out


def synonym_copies(spec: StageSpec, data: PreparedData) -> Encoded:
    """The WordNet-synonym copy of every training row, tokenised as the rows are (docs/method.md, LCL).

    Made once per stage, before training, as the original makes it once before training; drawn
    with the stage's seed, so a seed's copy is the same on every machine with WordNet 3.0.
    """
    from trainables.methods.synonyms import SynonymCopier

    texts = data.train_texts
    if len(texts) != len(data.train):
        raise ValueError(f"the synonym copy needs the {len(data.train)} training texts; PreparedData has {len(texts)}")
    copies = SynonymCopier().copies(texts, seed=spec.seed)
    encoded = encode(copies, data.train.labels, load_tokenizer(spec.data.model), spec.data.max_length)
    unchanged = sum(a == b for a, b in zip(texts, copies))
    _logger.info("synonym copies of %d training texts made, %d of them unchanged", len(texts), unchanged)
    return encoded


def _teacher_task(spec: StageSpec, data: PreparedData, data_map: dict | None, num_labels: int):
    """Task and epoch rows of generation 1 (docs/method.md, Saliency and Sim-MixUp; docs/method.md, LCL)."""
    recipe = spec.teacher
    n = len(data.train)
    if recipe.kind == "none":
        return CrossEntropyTask(), None
    if recipe.kind == "lcl":  # the weighting network: a second copy of the pretrained encoder, its own head
        weighting = build_model(spec.data.model, num_labels, seed=spec.seed * 1000 + 999)
        weighting.to(pick_device(spec.device))
        copies = synonym_copies(spec, data) if recipe.lcl_second_view == "synonym" else None
        return LabelAwareContrastiveTask(weighting, recipe.lcl_ce_weight, recipe.lcl_temperature,
                                         recipe.lcl_second_view, copies), None
    if recipe.kind == "rand":
        return MixupTask(RandomPartners(np.arange(n)), recipe.alpha, recipe.main_weight, recipe.layer), None
    dmap = DataMap.from_arrays(data_map)
    easy, ambiguous = dmap.regions(recipe.ea_fraction)
    # 66% EA trains on the two 33% subsets only (Hosseini and Caragea 2022); halves cover all.
    rows = np.sort(np.concatenate([easy, ambiguous]))
    if recipe.kind == "ea":
        partners = OtherSubsetPartners(easy, ambiguous, n)
        return MixupTask(partners, recipe.alpha, recipe.main_weight, recipe.layer), rows
    initial = saliency(torch.tensor(data_map["last_logits"]), torch.tensor(data.train.labels),
                       recipe.signed_saliency).numpy()
    partners = SaliencyPartners(easy, ambiguous, initial, recipe.scope, recipe.signed_saliency)
    return MixupTask(partners, recipe.alpha, recipe.main_weight, recipe.layer), rows


def _ood_finetune(spec: StageSpec, model, data: PreparedData, ambiguous: np.ndarray, percent: float,
                  seconds: dict | None = None) -> np.ndarray:
    """Fine-tune a copy of `model` on p% OOD + MixUp with ambiguous ID rows; OOD test logits.
    `seconds["finetune"]` gains the fine-tuning's time (the rest is evaluation)."""
    start = time.perf_counter()
    cfg = spec.ood
    tokenizer = load_tokenizer(spec.data.model)
    pool = data.ood_data.train
    picked = ood_finetune_indices(data.ood_data, percent, seed=spec.data.split_seed)
    ood_rows = encode([pool.texts[i] for i in picked], pool.labels[picked], tokenizer, spec.data.max_length)
    joined = ood_rows.concat(data.train)
    partners = RandomPartners(len(ood_rows) + np.asarray(ambiguous))
    task = MixupTask(partners, cfg.alpha, cfg.ood_weight, "features")
    train_cfg = dataclasses.replace(spec.train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                    lr=cfg.lr or spec.train.lr, select="last")
    tuned = copy.deepcopy(model)
    train(tuned, task, joined, None, train_cfg, seed=spec.seed + int(percent * 100), rows=np.arange(len(ood_rows)))
    if seconds is not None:
        seconds["finetune"] += time.perf_counter() - start
    return predict_logits(tuned, data.ood_test, spec.train.eval_batch_size)


def run_stage(spec: StageSpec, parent: Handover | None, parent_result: dict | None,
              data_map: dict | None, store: StageStore, keep: bool = True,
              data: PreparedData | None = None) -> tuple[Handover | None, dict]:
    """Train, evaluate and save one generation. Returns (handover, result).

    Args:
        parent: generation g-1's handover, for a student.
        parent_result: generation g-1's result (its temperature), for a student.
        data_map: arrays of the data-map stage (gold_probs, correct, last_logits), when the
            teacher recipe or OOD fine-tuning needs one.
        keep: make, store and return this stage's handover (a student, a resumed trial or an
            export may read it); without it the handover is None and nothing of it is stored.
        data: `prepare_data(spec.data)` made once for the sweep; None prepares it here.
    """
    clock = [time.perf_counter()]  # setup | training | evaluation | OOD work, in result["seconds"]
    device = pick_device(spec.device)
    data = data if data is not None else prepare_data(spec.data)
    labels = data.id_data.labels
    set_seed(spec.seed)
    # every generation starts from the pretrained encoder (born-again); heads differ per generation
    model = build_model(spec.data.model, len(labels), seed=spec.seed * 1000 + spec.generation).to(device)

    if spec.generation == 1:
        task, rows = _teacher_task(spec, data, data_map, len(labels))
        temperature_used = None
    else:
        if parent is None:
            raise ValueError(f"stage {spec.key()}: a student needs its parent's handover (weights and training-set "
                             f"logits), but {spec.parent} kept none; train the parent with keep=True")
        temperature_used = parent_result["temperature"] if spec.distill.kind == "csd" else 1.0
        task = DistillTask(parent.train_logits, temperature_used, spec.distill.scale_student, spec.distill.annealing)
        rows = None

    clock.append(time.perf_counter())
    fit = train(model, task, data.train, data.validation, spec.train, seed=spec.seed * 1000 + spec.generation,
                rows=rows, record_dynamics=spec.records_data_map)
    clock.append(time.perf_counter())
    val_logits = predict_logits(model, data.validation, spec.train.eval_batch_size)
    test_logits = predict_logits(model, data.test, spec.train.eval_batch_size)
    temperature, temps, eces = calibration.fit_temperature(val_logits, data.validation.labels,
                                                          n_bins=spec.n_bins, return_curve=True)
    metrics = {"temperature": float(temperature), "best_epoch": fit.best_epoch}
    if isinstance(task, LabelAwareContrastiveTask):  # how many anchors the contrastive term reached
        metrics["train_lcl_positive_share"] = task.positive_share
    if temperature_used is not None:
        metrics["distill_temperature"] = float(temperature_used)
    metrics.update(_metrics("val", val_logits, data.validation.labels, spec.n_bins, temperature))
    metrics.update(_metrics("test", test_logits, data.test.labels, spec.n_bins, temperature))
    arrays = {"val_logits": val_logits, "val_labels": data.validation.labels,
              "test_logits": test_logits, "test_labels": data.test.labels,
              "temperature_grid": temps, "temperature_ece": eces}

    handover = None
    if keep:  # the student's distillation targets, from this model as it is stored (fp32; docs/method.md, Training)
        handover = Handover(state_to_numpy(model), predict_logits(model, data.train, spec.train.eval_batch_size))

    if spec.records_data_map:
        arrays.update(gold_probs=fit.gold_probs, correct=fit.correct, last_logits=fit.last_logits)
        data_map = arrays

    clock.append(time.perf_counter())
    ood_seconds = {"finetune": 0.0, "evaluate": 0.0}  # the OOD work's two parts (issue 25)
    if spec.ood is not None and data.ood_test is not None:
        ood_logits = predict_logits(model, data.ood_test, spec.train.eval_batch_size)
        metrics.update(_metrics("ood", ood_logits, data.ood_test.labels, spec.n_bins))
        arrays.update(ood_logits=ood_logits, ood_labels=data.ood_test.labels)
        _, ambiguous = DataMap.from_arrays(data_map).regions(1.0)
        for p in spec.ood.percents:
            tag = f"ood_ft{p:g}"
            ft_logits = _ood_finetune(spec, model, data, ambiguous, p, ood_seconds)
            metrics.update(_metrics(tag, ft_logits, data.ood_test.labels, spec.n_bins))
            arrays[f"{tag}_logits"] = ft_logits
        ood_seconds["evaluate"] = time.perf_counter() - clock[-1] - ood_seconds["finetune"]

    clock.append(time.perf_counter())
    seconds = {name: round(b - a, 3) for name, a, b in zip(("setup", "train", "evaluate", "ood"), clock, clock[1:])}
    result = {"key": spec.key(), "generation": spec.generation, "temperature": float(temperature),
              "metrics": metrics, "history": fit.history, "labels": list(labels), "seconds": seconds,
              "kept": list(HANDOVER_PARTS) if keep else [],
              "ood_seconds": {name: round(v, 3) for name, v in ood_seconds.items()}}
    if keep and store.has(spec.key()) and (not store.load_result(spec.key()).get("kept")
                                           or store.weights_released(spec.key())):
        # trained again only to hand over: the stage stays as it was first stored, the handover goes
        # beside it, and only if this model is the stored one (its test logits bit for bit)
        stored = store.load_arrays(spec.key())["test_logits"]
        if not np.array_equal(stored, test_logits):
            raise HandoverMismatchError(
                f"stage {spec.key()} was trained again for its weights (a student needs them and they were not "
                f"kept), but its test logits differ from the stored ones by up to "
                f"{float(np.abs(stored - test_logits).max()):.3g}, so the student would not be built on the "
                "stored model (a GPU's nondeterminism, or changed libraries). Run this sweep with "
                "--keep-all-weights on a fresh store, or remove that stage's folder to train it and its "
                "students anew.")
        late_handovers(store).save(spec.key(), {"key": spec.key(), "kept": list(HANDOVER_PARTS)},
                                   handover.weights, {"train_logits": handover.train_logits})
    stored = dict(arrays, train_logits=handover.train_logits) if keep else arrays
    with tempfile.TemporaryDirectory() as tmp:
        _write_plots(Path(tmp), spec, data, arrays, float(temperature))
        # raw logits beside the plots, so any ECE variant can be recomputed later (docs/method.md, Metrics)
        np.savez_compressed(Path(tmp) / "logits.npz", **{k: v for k, v in arrays.items()
                                                         if k.endswith(("_logits", "_labels"))})
        store.save(spec.key(), result, handover.weights if keep else None, stored, tmp)
    _logger.info("stage %s done: test macro F1 %.2f, ECE %.2f (TS %.2f)", spec.key(),
                 metrics["test_macro_f1"], metrics["test_ece"], metrics["test_ece_ts"])
    return handover, result


def _write_plots(out: Path, spec: StageSpec, data: PreparedData, arrays: dict, temperature: float) -> None:
    """Reliability diagrams (before/after TS), confusion of test errors, ECE-vs-T, data map."""
    names = list(data.id_data.labels)
    plots.reliability_pair(arrays["test_logits"], arrays["test_labels"], temperature,
                           out / "reliability_test.png", n_bins=spec.n_bins)
    plots.confusion_matrix_plot(arrays["test_logits"].argmax(-1), arrays["test_labels"], names,
                                out / "confusion_test.png")
    plots.temperature_curve_plot(arrays["temperature_grid"], arrays["temperature_ece"], temperature,
                                 out / "temperature_curve.png")
    if "gold_probs" in arrays:
        dmap = DataMap.from_arrays(arrays)
        easy, _ = dmap.regions(1.0)
        mask = np.zeros(dmap.gold_probs.shape[1], dtype=bool)
        mask[easy] = True
        plots.data_map_plot(dmap.confidence, dmap.variability, dmap.correctness, out / "data_map.png", easy_mask=mask)
    if "ood_logits" in arrays:
        plots.reliability_pair(arrays["ood_logits"], arrays["ood_labels"], 1.0, out / "reliability_ood.png",
                              n_bins=spec.n_bins)
