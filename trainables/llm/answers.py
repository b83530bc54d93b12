"""An LLM's answer -> (label index, top-1 confidence), or the reason it is not fully usable.

The prompt asks for "a JSON string" but shows it with single quotes (A.5), so models answer
`{'prediction': 'joy', 'confidence': 0.9}`, real JSON, or either inside prose or a code fence.
The first `{...}` that names a prediction is read as JSON, else as a Python literal, else
field by field. The prediction matches a label ignoring case, surrounding quotes and
punctuation, and `_` against space; a label written as the few-shot prompt numbers the
categories ("4. sadness", "4) sadness") is read when its number is that label's. The confidence
is a number or a numeric string in [0, 1]; above 1 it is read as a percentage only when it is
written with `%` or is a whole number up to 100 ("85" means 0.85, as models write percentages);
any other value (1.5, 85.5, 250, -0.2, "high") is unreadable: 1.5 is no more likely 1.5% than a
slip for 0.15.

The rule for the rest (docs/method.md, LLM baselines): an answer with no object, no prediction
or an unknown label is unusable; it is counted by its reason, kept verbatim with the raw
answers, and scored as a wrong prediction with confidence 1/K (K labels), i.e. a model that said
nothing usable is treated as a uniform guess that missed. An answer that names a label but no
readable confidence keeps its label and gets confidence 1/K, counted under its own reason
(`bad_confidence`): the prediction is the model's, only its confidence is missing.
"""
from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

NO_OBJECT, NO_PREDICTION, UNKNOWN_LABEL, BAD_CONFIDENCE = "no_object", "no_prediction", "unknown_label", "bad_confidence"
UNUSABLE = (NO_OBJECT, NO_PREDICTION, UNKNOWN_LABEL)  # no label: scored wrong, confidence 1/K
PROBLEMS = (*UNUSABLE, BAD_CONFIDENCE)  # BAD_CONFIDENCE keeps its label, with confidence 1/K

_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_FIELD = r"""["']?{key}["']?\s*[:=]\s*(?:"([^"]*)"|'([^']*)'|([^,}}\n]+))"""


@dataclass(frozen=True)
class Answer:
    """One parsed answer: `label` is None exactly when `problem` is one of UNUSABLE, `confidence`
    exactly when `problem` is set."""

    label: int | None
    confidence: float | None
    problem: str | None  # one of PROBLEMS, or None for an answer read in full

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


_NUMBERED = re.compile(r"^\s*(\d+)\s*[.):]\s*(.*)$", re.DOTALL)  # "4. joy", as the few-shot prompt lists them


def match_label(prediction, labels: Sequence[str]) -> int | None:
    """The index of the label `prediction` names, or None (not a string, no label, or a number
    that is not the named label's in the prompt's 1-based list)."""
    if not isinstance(prediction, str):
        return None
    number = None
    if m := _NUMBERED.match(prediction):
        number, prediction = int(m.group(1)), m.group(2)
    wanted = _norm(prediction)
    hits = [i for i, name in enumerate(labels) if _norm(name) == wanted]
    if len(hits) != 1 or (number is not None and number != hits[0] + 1):
        return None
    return hits[0]


def read_confidence(value) -> float | None:
    """A confidence in [0, 1] from a number or numeric string, or None (module docstring: a value
    above 1 is a percentage when written with `%` or a whole number up to 100)."""
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
    if percent or (1.0 < value <= 100.0 and value.is_integer()):
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
        return Answer(label, None, BAD_CONFIDENCE)
    return Answer(label, confidence, None)
