"""`emocal export`: one (dataset, method) of a sweep -> a folder that loads alone, and a registered MLflow model.

The run exported is the one the report reports (docs/method.md, Exporting a model): the
generation g* of orchestrator/results.py, and at g* the seed with the best ID validation macro
F1 (ties: the smallest seed; `--seed` overrides). Its weights come from the stage store; where
the stage kept none, it is trained again into a scratch store from its stored parent and kept
only when its test logits equal the stored ones bit for bit, else the export is refused saying
how to rerun with the weights kept. The folder (trainables/exporting.py) is then loaded as a
user would (trainables/serving.py) and its test-split logits are checked against the stored
ones before anything is logged: an export never disagrees with the run's numbers.

The temperature is the one the method's reported numbers use: the fitted T for the methods the
paper reports after temperature scaling, T = 1 for those it reports raw (the fitted T is kept
beside it). The MLflow model (orchestrator/pyfunc_model.py) is logged to the run it came from,
at step g*, and registered as `<spec>-<dataset>-<method>`, with `--alias` set on that version.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator import locations

_logger = logging.getLogger(__name__)

SEED_RULE = ("at the reported generation g*, the seed with the best ID validation macro F1 "
             "(ties: the smallest seed)")
MODEL_NAME = "calibrated_model"  # the logged model's name in its run


class ExportError(RuntimeError):
    """An export that cannot be made as asked; the message says why and what to run instead."""


@dataclass(frozen=True)
class Choice:
    """Which run is exported, and the validation numbers the choice was made on."""

    row: object  # orchestrator.results.Generation of the chosen seed at the chosen generation
    generation: int
    reported_generation: int
    val_macro_f1_by_seed: dict
    rule: str


def choose(rows, dataset: str, method: str, seed: int | None = None, generation: int | None = None) -> Choice:
    """The run to export: g* and the seed by SEED_RULE, or the seed / generation asked for.

    Raises:
        ExportError: no current run of (dataset, method), or no such seed or generation.
    """
    from orchestrator.results import CHAIN, group, reported_generation

    groups = group(r for r in rows if r.kind == CHAIN)  # an LLM row has no weights
    if (dataset, method) not in groups:
        known = ", ".join(f"{d}/{m}" for d, m in sorted(groups)) or "none"
        raise ExportError(f"no current run of dataset {dataset!r} and method {method!r} with weights to export; "
                          f"the sweep's: {known}")
    trials = groups[(dataset, method)]
    g_star = reported_generation(trials)
    g = g_star if generation is None else generation
    at_g = {gens[g].seed: gens[g] for gens in trials.values() if g in gens}
    if not at_g:
        raise ExportError(f"{dataset}/{method}: no seed logged generation {g}")
    scores = {s: r.value("val_macro_f1") for s, r in sorted(at_g.items())}
    if seed is None:
        seed = max(scores, key=lambda s: (-math.inf if math.isnan(scores[s]) else scores[s], -s))
        rule = SEED_RULE
    elif seed not in at_g:
        raise ExportError(f"{dataset}/{method}: seed {seed} has no generation {g}; seeds there: {sorted(at_g)}")
    else:
        rule = "--seed"
    return Choice(at_g[seed], g, g_star, scores, rule if generation is None else rule + ", --generation")


@dataclass(frozen=True)
class StoredStage:
    """Where the chosen generation lives: its run, its stage key and store."""

    run_id: str
    key: str
    store_root: Path


def stored_stage(run_dir: Path, trial: str, generation: int) -> StoredStage:
    """The stage key of a trial's generation, from the recorder's state in the run folder."""
    path = run_dir / locations.RECORDER_STATE_FILE
    if not path.is_file():
        raise ExportError(f"{path} is missing: pass --runs DIR, the folder the sweep's run folders are in")
    state = json.loads(path.read_text())["trials"]
    if trial not in state:
        raise ExportError(f"{path} does not know trial {trial}; was the sweep rerun with another spec?")
    stages = {int(g): key for g, key in state[trial]["stages"]}
    return StoredStage(state[trial]["run_id"], stages[generation], Path(state[trial]["store"]))


def stage_spec(run_dir: Path, data_root: Path, trial: str, key: str):
    """The StageSpec of `key`, planned again from the spec as the sweep ran it (`<run folder>/spec.yaml`),
    the torch threads its Ray task ran with (orchestrator/trial.py: the trial's task CPUs), and
    every stage of its trial by key (its ancestors, to train again what kept no weights)."""
    import yaml

    from orchestrator.plan import build_plan
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import TASK_HEAD_CPU

    raw = yaml.safe_load((run_dir / "spec.yaml").read_text())
    spec = parse_spec(raw, source_path=str(run_dir / "spec.yaml"), data_root=str(data_root))
    for plan in build_plan(spec):
        if plan.key == trial:
            for stage in plan.all_stages:
                if stage.key() == key:
                    return (stage, max(1, round(spec.resources.cpus_per_trial - TASK_HEAD_CPU)),
                            {s.key(): s for s in plan.all_stages})
    raise ExportError(f"stage {key} of {trial} is not in the plan of {run_dir / 'spec.yaml'} with data root "
                      f"{data_root}: the data files or the code changed since the sweep; export from a run of this "
                      "code (rerun the sweep) or pass the data root the sweep used")


def rerun_hint(dataset: str, method: str) -> str:
    return (f"add `export: [{{dataset: {dataset}, method: {method}}}]` to the spec and run the sweep again "
            "(without --resume, which refuses a changed spec): every generation of that pair keeps its weights, "
            "and the stages already stored are trained again only to keep them (a new sweep run with "
            "--keep-all-weights keeps every stage's it trains)")


def stage_weights(store, spec, dataset: str, method: str, scratch: Path, threads: int = 1,
                  chain: dict | None = None) -> tuple[dict, str]:
    """The stage's weights and where they came from: the store, else trained again and proven the same.

    A stage is a pure function of its key (docs/design.md, Stages and their keys), so training it
    again from its stored parent gives the same model; on the CPU the proof is that the new test
    logits equal the stored ones bit for bit (np.array_equal). Nothing else is accepted. It trains
    with the torch threads the sweep's task had: another thread count sums in another order, and
    the logits differ in their last bits. A parent whose weights are gone too (a sweep removes a
    teacher's once its students are stored) is trained again the same way first, from `chain`
    (the trial's stages by key), back to the nearest ancestor that kept them or to the teacher.

    Raises:
        ExportError: an ancestor needed is not in `chain`, or retrained logits differ.
    """
    handover, how = _handover(store, spec, dataset, method, scratch, threads, chain or {})
    return handover.weights, how


def _handover(store, spec, dataset: str, method: str, scratch: Path, threads: int, chain: dict):
    """(the stage's handover, "stored" or how it was made again): see `stage_weights`."""
    from trainables.stage import load_handover, run_stage
    from trainables.store import StageStore

    key = spec.key()
    handover = load_handover(store, key)
    if handover is not None:
        return handover, "stored"
    parent = parent_result = None
    made = "trained again, test logits bit-identical to the stored ones"
    if spec.parent:
        parent = load_handover(store, spec.parent)
        if parent is None and spec.parent not in chain:
            raise ExportError(f"stage {key} kept no weights and neither did its parent {spec.parent}, so it "
                              f"cannot be trained again here; {rerun_hint(dataset, method)}")
        if parent is None:
            parent, _ = _handover(store, chain[spec.parent], dataset, method, scratch, threads, chain)
            made += " (and so were its ancestors' that kept none)"
        parent_result = store.load_result(spec.parent)
    data_map = None
    if spec.data_map not in (None, key):
        data_map = dict(store.load_arrays(spec.data_map))  # gold_probs, correct, last_logits among them
    _logger.info("stage %s kept no weights: training it again to export it (its numbers must come out the same)", key)
    import torch

    torch.set_num_threads(threads)
    fresh, _ = run_stage(dataclasses.replace(spec, device="cpu"), parent, parent_result, data_map,
                         StageStore(scratch), keep=True)
    again = StageStore(scratch).load_arrays(key)["test_logits"]
    stored = store.load_arrays(key)["test_logits"]
    if not np.array_equal(again, stored):
        raise ExportError(f"stage {key} trained again gives other test logits than the stored ones (largest "
                          f"difference {np.abs(again - stored).max():.3g}), so the model would not be the run's; "
                          f"{rerun_hint(dataset, method)}")
    return fresh, made


def calibration_record(choice: Choice, result: dict, run_params: dict, stage_key: str, spec_name: str,
                       weights_from: str, tags: dict) -> dict:
    """calibration.json without its labels (trainables/exporting.py adds them in order)."""
    row, m = choice.row, result["metrics"]
    scaled = row.ece_kind == "ts"
    return {
        "temperature": float(result["temperature"]) if scaled else 1.0,
        "fitted_temperature": float(result["temperature"]),
        "reported": "temperature-scaled" if scaled else "raw (T = 1, as the paper reports this method)",
        "fitted_on": "validation",
        "n_bins": int(run_params["n_bins"]),
        "ece_percent": {"validation": {"before_scaling": m["val_ece"], "after_scaling": m["val_ece_ts"]},
                        "test": {"before_scaling": m["test_ece"], "after_scaling": m["test_ece_ts"]}},
        "test_macro_f1": m["test_macro_f1"], "val_macro_f1": m["val_macro_f1"],
        "dataset": row.dataset, "method": row.method, "seed": row.seed, "generation": choice.generation,
        "reported_generation": choice.reported_generation, "choice": choice.rule,
        "val_macro_f1_by_seed": {str(k): v for k, v in choice.val_macro_f1_by_seed.items()},
        "stage_key": stage_key, "spec": spec_name, "weights": weights_from,
        "emocal_version": tags.get("emocal.version", ""), "git_commit": tags.get("emocal.git_commit", ""),
    }


def check_export(folder: Path, spec, stored: dict, record: dict, tolerance: float = 1e-4) -> float:
    """Load the folder as a user would, predict the stage's ID test rows, and require the run's numbers.

    The argmax must be the stored logits' everywhere, and the macro F1 and the ECE at the folder's T
    recomputed from its probabilities must equal the stored ones to 1e-6 (percent): the model's
    reported numbers are the run's. The logits may differ by `tolerance` at most: the same on the
    CPU that trained them (the batches are the sweep's), a few ulps apart on another device.

    Returns:
        The largest absolute logit difference.

    Raises:
        ExportError: any of them differs.
    """
    from trainables import calibration
    from trainables.serving import CalibratedClassifier
    from trainables.stage import id_splits

    _, _, test = id_splits(spec.data)
    if not np.array_equal(test.labels, stored["test_labels"]):
        raise ExportError(f"the test rows of {spec.data.dataset} are not those the stage was evaluated on "
                          "(the data files changed since the sweep?)")
    logits, _ = CalibratedClassifier(folder).logits(list(test.texts))
    diff = float(np.abs(logits - stored["test_logits"]).max())
    probs = calibration.softmax(logits, record["temperature"])
    ece_key = "after_scaling" if record["temperature"] != 1.0 else "before_scaling"
    f1 = calibration.classification_metrics(probs, test.labels)["macro_f1"]
    ece = 100 * calibration.expected_calibration_error(probs, test.labels, n_bins=record["n_bins"])
    problems = [name for name, bad in (
        (f"logits differ by {diff:.3g} > {tolerance:g}", diff > tolerance),
        ("the predicted classes differ", not np.array_equal(logits.argmax(-1), stored["test_logits"].argmax(-1))),
        (f"test macro F1 {f1:.6f} != {record['test_macro_f1']:.6f}", abs(f1 - record["test_macro_f1"]) > 1e-6),
        (f"test ECE {ece:.6f} != {record['ece_percent']['test'][ece_key]:.6f}",
         abs(ece - record["ece_percent"]["test"][ece_key]) > 1e-6)) if bad]
    if problems:
        raise ExportError(f"the exported model is not the run's on its test rows ({'; '.join(problems)}); not "
                          f"exported (the folder {folder} is left to inspect)")
    return diff


def registered_name(spec_name: str, dataset: str, method: str) -> str:
    """The registry name of an export: `<spec>-<dataset>-<method>` (names hold no `-` but the spec's)."""
    return f"{spec_name}-{dataset}-{method}"


def signature(labels: list[str]):
    """Texts in; label, confidence, every class's probability and the two flags out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    outputs = [ColSpec("string", "label"), ColSpec("double", "confidence")]
    outputs += [ColSpec("double", f"prob_{name}") for name in labels]
    outputs += [ColSpec("boolean", "empty_text"), ColSpec("boolean", "truncated")]
    return ModelSignature(inputs=Schema([ColSpec("string", "text")]), outputs=Schema(outputs))


def requirements() -> list[str]:
    """What the model needs where it is served (the versions this export was made with)."""
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in
            ("mlflow", "torch", "transformers", "safetensors", "numpy", "pandas")]


def log_registered_model(uri: str, run_id: str, folder: Path, name: str, alias: str | None, record: dict):
    """Log the export as an MLflow model of its run (at step g*), register it, set the alias.

    Returns:
        mlflow.models.model.ModelInfo (model_id, model_uri, registered_model_version).
    """
    import mlflow
    import pandas as pd

    from orchestrator import pyfunc_model

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME, python_model=pyfunc_model.__file__, artifacts={pyfunc_model.EXPORT_ARTIFACT: str(folder)},
            signature=signature(record["labels"]),
            input_example=pd.DataFrame({"text": ["I passed my exam and I cannot stop smiling."]}),
            registered_model_name=name, pip_requirements=requirements(), step=record["generation"],
            params={"temperature": str(record["temperature"]), "stage_key": record["stage_key"]},
            tags={"emocal.dataset": record["dataset"], "emocal.method": record["method"],
                  "emocal.seed": str(record["seed"]), "emocal.generation": str(record["generation"])})
        ece = record["ece_percent"]
        mlflow.log_metrics({"test_macro_f1": record["test_macro_f1"], "test_ece_reported": (
            ece["test"]["after_scaling"] if record["temperature"] != 1.0 else ece["test"]["before_scaling"])},
            step=record["generation"], model_id=info.model_id)
    client = mlflow.MlflowClient(uri)
    if alias:
        client.set_registered_model_alias(name, alias, str(info.registered_model_version))
    return info


def export(args: argparse.Namespace) -> int:
    """`emocal export NAME --dataset D --method M`: choose, fetch or retrain, write, check, log, register."""
    from orchestrator.results import collect
    from trainables.exporting import write_export
    from trainables.store import StageStore

    run_dir = locations.run_folder(args.runs, args.experiment)
    uri = locations.resolve_tracking_uri(args.tracking_uri, run_dir, must_exist=True)
    rows, _ = collect(uri, args.experiment)
    choice = choose(rows, args.dataset, args.method, args.seed, args.generation)
    where = stored_stage(run_dir, choice.row.trial, choice.generation)
    print(f"exporting {choice.row.trial} generation {choice.generation} (g* = {choice.reported_generation}; "
          f"{choice.rule}): stage {where.key}", flush=True)
    store = StageStore(where.store_root)
    spec, threads, chain = stage_spec(run_dir, args.data_root, choice.row.trial, where.key)
    from mlflow import MlflowClient

    run = MlflowClient(uri).get_run(where.run_id)
    out = Path(args.out or f"exports/{registered_name(args.experiment, args.dataset, args.method)}").resolve()
    with tempfile.TemporaryDirectory() as scratch:
        weights, source = stage_weights(store, spec, args.dataset, args.method, Path(scratch), threads, chain)
        result = store.load_result(where.key)
        record = calibration_record(choice, result, run.data.params, where.key, args.experiment, source,
                                    run.data.tags)
        folder = write_export(out, weights, spec.data.model, result["labels"], spec.data.max_length,
                              spec.train.eval_batch_size, record)
    diff = check_export(folder, spec, store.load_arrays(where.key), {**record, "labels": result["labels"]})
    print(f"wrote {folder} (weights {source}; its test logits match the stored ones to {diff:.2g}); "
          f"T = {record['temperature']:g}", flush=True)
    if args.no_register:
        return 0
    name = registered_name(args.experiment, args.dataset, args.method)
    info = log_registered_model(uri, where.run_id, folder, name, args.alias, {**record, "labels": result["labels"]})
    target = f"models:/{name}@{args.alias}" if args.alias else f"models:/{name}/{info.registered_model_version}"
    print(f"logged model {info.model_id} to run {where.run_id}; registered {name} version "
          f"{info.registered_model_version}{f' as @{args.alias}' if args.alias else ''}\n"
          f"  serve it: MLFLOW_TRACKING_URI={uri} mlflow models serve -m {target} --env-manager local "
          "-h 127.0.0.1 -p 5001", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """The command: an ExportError is a message and exit code 2, never a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return export(args)
    except (ExportError, FileExistsError, locations.LocationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """`python -m orchestrator.export ...` (`emocal export` is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("export", argv)


if __name__ == "__main__":
    sys.exit(main())
