"""An LLM's answer -> (label index, top-1 confidence), or the reason it is unusable.

The prompt asks for "a JSON string" but shows it with single quotes (A.5), so models answer
`{'prediction': 'joy', 'confidence': 0.9}`, real JSON, or either inside prose or a code fence.
The first `{...}` that names a prediction is read as JSON, else as a Python literal, else
field by field. The prediction matches a label ignoring case, surrounding quotes and
punctuation, and `_` against space. The confidence is a number or a numeric string; a value
in (1, 100] (or one written with `%`) is a percentage ("85" means 0.85), since models answer
that way; anything else outside [0, 1] is unreadable.

The rule for the rest (docs/guide.md, "LLM baselines"): an answer is usable when it names exactly
one label and gives a readable confidence. Every other answer is counted (by its reason),
kept verbatim with the raw answers, and scored as a wrong prediction with confidence 1/K
(K labels), i.e. a model that said nothing usable is treated as a uniform guess that missed.
"""
from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

NO_OBJECT, NO_PREDICTION, UNKNOWN_LABEL, BAD_CONFIDENCE = "no_object", "no_prediction", "unknown_label", "bad_confidence"
PROBLEMS = (NO_OBJECT, NO_PREDICTION, UNKNOWN_LABEL, BAD_CONFIDENCE)

_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_FIELD = r"""["']?{key}["']?\s*[:=]\s*(?:"([^"]*)"|'([^']*)'|([^,}}\n]+))"""


@dataclass(frozen=True)
class Answer:
    """One parsed answer: `label` and `confidence` are None exactly when `problem` is set."""

    label: int | None
    confidence: float | None
    problem: str | None  # one of PROBLEMS, or None for a usable answer

    @property
    def usable(self) -> bool:
        return self.problem is None


def _fields(obj: str) -> dict:
    """The prediction and confidence of one `{...}`: JSON, a Python literal, or field by field."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(obj)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return {str(k).strip().lower(): v for k, v in value.items()}
    out = {}
    for key in ("prediction", "confidence"):
        m = re.search(_FIELD.format(key=key), obj, re.IGNORECASE)
        if m:
            out[key] = next(g for g in m.groups() if g is not None).strip()
    return out


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip(" \t\n'\"`.,;:!?*()[]").lower()


def match_label(prediction, labels: Sequence[str]) -> int | None:
    """The index of the label `prediction` names, or None (not a string, or no label)."""
    if not isinstance(prediction, str):
        return None
    wanted = _norm(prediction)
    hits = [i for i, name in enumerate(labels) if _norm(name) == wanted]
    return hits[0] if len(hits) == 1 else None


def read_confidence(value) -> float | None:
    """A confidence in [0, 1] from a number or numeric string (percentages divided by 100), or None."""
    if isinstance(value, bool):
        return None
    percent = False
    if isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            value = float(text.rstrip("%").strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value:  # NaN
        return None
    value = float(value)
    if percent or 1.0 < value <= 100.0:
        value /= 100.0
    return value if 0.0 <= value <= 1.0 else None


def parse_answer(text: str, labels: Sequence[str]) -> Answer:
    """Read one generated answer against the dataset's label names."""
    objects = _OBJECT.findall(text or "")
    if not objects:
        return Answer(None, None, NO_OBJECT)
    found = [f for f in (_fields(o) for o in objects) if "prediction" in f]
    if not found:
        return Answer(None, None, NO_PREDICTION)
    fields = found[0]
    label = match_label(fields["prediction"], labels)
    if label is None:
        return Answer(None, None, UNKNOWN_LABEL)
    confidence = read_confidence(fields.get("confidence"))
    if confidence is None:
        return Answer(None, None, BAD_CONFIDENCE)
    return Answer(label, confidence, None)
