"""One LLM baseline stage: prompt, generate, parse and score on the ID test and the OOD test sets.

A stage is a pure function of its `LLMStageSpec` (greedy decoding), whose hash is its key, so
it lives in the same stage store as the chains' generations: found there after a restart,
never run twice, logged to MLflow by the driver like any generation (orchestrator/recorder.py),
as generation 1. The OOD test set is evaluated without fine-tuning (Table 2's LLM rows).
Artifacts: every raw answer with its parse and whether max_new_tokens cut it
(`answers_<split>.jsonl`) and one prompt of each split as sent (`prompt_<split>.txt`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainables.data import load_dataset
from trainables.llm.answers import NO_OBJECT, NO_PREDICTION, parse_answer
from trainables.llm.generate import generate_answers, load_generator
from trainables.llm.prompts import draw_examples, few_shot_prompt, zero_shot_prompt
from trainables.llm.score import answer_arrays, score_answers
from trainables.stage import DataConfig, cap_split, without_paths
from trainables.store import StageStore
from trainables.train import pick_device, set_seed

_logger = logging.getLogger(__name__)

# Bump when a change to this code changes an LLM stage's outcome for the same spec.
# 2: a label without a readable confidence keeps its label; numbered labels read; 1.5 unreadable;
#    cut answers counted; llm.examples_from.
LLM_STAGE_FORMAT_VERSION = 2
# where a stage runs and where its files lie, never what it computes (the data's hash is `fingerprint`)
LLM_KEY_EXEMPT = ("device", "data.data_root")
SPLITS = (("test", "ID test"), ("ood", "OOD test"))


@dataclass(frozen=True)
class LLMSettings:
    """What the model is asked and how it answers (the model itself is `DataConfig.model`)."""

    shots_per_class: int = 0
    max_new_tokens: int = 64
    batch_size: int = 16  # in the key: padding differs with the batch, and bf16 numerics with it
    examples_from: str = "id_train"  # the OOD test prompts' examples: the ID training split or the OOD pool


@dataclass(frozen=True)
class LLMStageSpec:
    """Everything that determines one LLM trial's answers; its hash is the stage key."""

    seed: int  # draws the few-shot examples; a zero-shot stage does not depend on it
    data: DataConfig
    llm: LLMSettings
    n_bins: int = 10
    device: str = "auto"
    generation: int = 1  # one step in MLflow and the report, as a chain's first generation

    def key(self) -> str:
        payload = without_paths(dataclasses.asdict(self), LLM_KEY_EXEMPT)
        payload["format"] = LLM_STAGE_FORMAT_VERSION
        if self.llm.shots_per_class == 0:
            payload.pop("seed")  # greedy zero-shot: the same answers for every seed
        blob = json.dumps(payload, sort_keys=True, default=str)
        return "llm-" + hashlib.sha256(blob.encode()).hexdigest()[:20]

    @classmethod
    def from_dict(cls, d: dict) -> "LLMStageSpec":
        return cls(**{**d, "data": DataConfig.from_dict(d["data"]), "llm": LLMSettings(**d["llm"])})


def build_prompts(texts, labels, examples) -> list[str]:
    if examples:
        return [few_shot_prompt(t, labels, examples) for t in texts]
    return [zero_shot_prompt(t, labels) for t in texts]


def run_llm_stage(spec: LLMStageSpec, store: StageStore) -> dict:
    """Answer, score and save one LLM stage; returns its result (metrics under "metrics")."""
    clock = [time.perf_counter()]
    set_seed(spec.seed)
    cfg = spec.data
    ds = load_dataset(cfg.dataset, cfg.data_root, split_seed=cfg.split_seed)
    labels = list(ds.labels)
    shots = spec.llm.shots_per_class
    splits = {"test": cap_split(ds.test, cfg.max_eval, cfg.split_seed)}
    examples = {"test": draw_examples(ds.train, labels, shots, spec.seed) if shots else []}
    if cfg.ood_dataset is not None:
        ood = load_dataset(cfg.ood_dataset, cfg.data_root, split_seed=cfg.split_seed)
        if tuple(ood.labels) != tuple(ds.labels):
            raise ValueError(f"OOD dataset {ood.name} labels {ood.labels} are not in the order of {ds.name}'s {ds.labels}")
        splits["ood"] = cap_split(ood.test, cfg.max_eval, cfg.split_seed)
        # the paper does not say where the OOD prompts' examples come from: the ID test's, or the OOD pool's
        examples["ood"] = (draw_examples(ood.train, labels, shots, spec.seed) if shots and spec.llm.examples_from == "ood_pool"
                           else examples["test"])
    model, tokenizer = load_generator(cfg.model, pick_device(spec.device))
    clock.append(time.perf_counter())

    metrics: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for split, title in SPLITS:
            if split not in splits:
                continue
            data = splits[split]
            prompts = build_prompts(data.texts, labels, examples[split])
            raw, cut = generate_answers(model, tokenizer, prompts, spec.llm.batch_size, spec.llm.max_new_tokens)
            parsed = [parse_answer(a, labels) for a in raw]
            metrics.update(score_answers(split, parsed, data.labels, len(labels), spec.n_bins))
            metrics.update(cut_counts(split, cut, parsed))
            pred, conf = answer_arrays(parsed, len(labels))
            arrays.update({f"{split}_labels": data.labels, f"{split}_pred": pred, f"{split}_confidence": conf})
            _write_answers(Path(tmp) / f"answers_{split}.jsonl", data, raw, cut, parsed, labels)
            (Path(tmp) / f"prompt_{split}.txt").write_text(prompts[0])
            problems = Counter(p.problem for p in parsed if p.problem)
            if problems:
                first = next(a for a, p in zip(raw, parsed) if p.problem)
                _logger.warning("%s: %d of %d answers not read in full (%s), given confidence 1/%d (wrong when they "
                                "name no label); %d cut at %d new tokens; first: %r", title, sum(problems.values()),
                                len(parsed), dict(problems), len(labels), sum(cut), spec.llm.max_new_tokens, first[:200])
        clock.append(time.perf_counter())
        result = {"key": spec.key(), "generation": spec.generation, "metrics": metrics, "labels": labels,
                  "few_shot_examples": [list(e) for e in examples["test"]],
                  "few_shot_examples_ood": [list(e) for e in examples.get("ood", [])],
                  "seconds": {"setup": round(clock[1] - clock[0], 3), "generate": round(clock[2] - clock[1], 3)}}
        store.save(spec.key(), result, None, arrays, tmp)
    _logger.info("LLM stage %s done: ID test macro F1 %.2f, ECE %.2f, %d unusable answers", spec.key(),
                 metrics["test_macro_f1"], metrics["test_ece"], metrics["test_unusable"])
    return result


def cut_counts(split: str, cut, parsed) -> dict[str, float]:
    """`{split}_cut`: answers that used every new token without ending; `{split}_cut_no_answer`: of
    those, the ones whose cut hid the answer (no `{...}` naming a prediction closed before it)."""
    hidden = sum(c and p.problem in (NO_OBJECT, NO_PREDICTION) for c, p in zip(cut, parsed))
    return {f"{split}_cut": float(sum(cut)), f"{split}_cut_no_answer": float(hidden)}


def _write_answers(path: Path, data, raw, cut, parsed, labels) -> None:
    """Every answer as generated, beside its text, gold label, whether it was cut and how it was read."""
    with open(path, "w") as f:
        for i, (text, gold, answer, was_cut, p) in enumerate(zip(data.texts, data.labels, raw, cut, parsed)):
            f.write(json.dumps({"row": i, "text": text, "gold": labels[int(gold)], "answer": answer, "cut": was_cut,
                                "prediction": None if p.label is None else labels[p.label],
                                "confidence": p.confidence, "problem": p.problem}) + "\n")
