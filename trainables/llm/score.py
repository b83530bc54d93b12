"""Parsed LLM answers -> the metrics every row has: macro/weighted F1, accuracy, ECE.

F1 and accuracy in percent as `calibration.classification_metrics` computes them (scikit-learn,
macro over the classes present in gold or predictions); ECE on the stated top-1 confidence
(`calibration.top1_ece`, the same bins). Unusable answers and unreadable confidences are scored
by the rule in trainables/llm/answers.py (confidence 1/K; wrong when no label) and counted
beside the metrics.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from trainables.calibration import top1_ece
from trainables.llm.answers import BAD_CONFIDENCE, UNUSABLE, Answer

NO_LABEL = -1  # the prediction of an unusable answer: matches no gold label


def answer_arrays(answers: Sequence[Answer], num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, confidences) with the unusable-answer rule applied."""
    pred = np.array([NO_LABEL if a.label is None else a.label for a in answers], dtype=np.int64)
    conf = np.array([1.0 / num_labels if a.confidence is None else a.confidence for a in answers], dtype=np.float64)
    return pred, conf


def score_answers(prefix: str, answers: Sequence[Answer], gold: np.ndarray, num_labels: int, n_bins: int) -> dict:
    """`{prefix}_macro_f1`, `_weighted_f1`, `_accuracy`, `_ece`, `_ece15`, `_ece_equal_mass` (percent),
    `_answers`, `_unusable` (no label) with one `_unusable_<reason>` count per reason, and
    `_bad_confidence` (a label without a readable confidence)."""
    pred, conf = answer_arrays(answers, num_labels)
    gold = np.asarray(gold, dtype=np.int64)
    classes = sorted(set(gold.tolist()) | set(pred[pred != NO_LABEL].tolist()))
    correct = (pred == gold).astype(np.float64)
    out = {
        "macro_f1": 100.0 * float(f1_score(gold, pred, labels=classes, average="macro", zero_division=0)),
        "weighted_f1": 100.0 * float(f1_score(gold, pred, labels=classes, average="weighted", zero_division=0)),
        "accuracy": 100.0 * float(accuracy_score(gold, pred)),
        "ece": 100.0 * top1_ece(conf, correct, n_bins=n_bins),
        "ece15": 100.0 * top1_ece(conf, correct, n_bins=15),
        "ece_equal_mass": 100.0 * top1_ece(conf, correct, n_bins=n_bins, binning="equal_mass"),
        "answers": len(answers),
    }
    problems = Counter(a.problem for a in answers if a.problem is not None)
    out["unusable"] = sum(problems[reason] for reason in UNUSABLE)
    out.update({f"unusable_{reason}": problems.get(reason, 0) for reason in UNUSABLE})
    out[BAD_CONFIDENCE] = problems.get(BAD_CONFIDENCE, 0)
    return {f"{prefix}_{k}": float(v) for k, v in out.items()}
