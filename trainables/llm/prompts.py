"""The prompts of appendix A.5, verbatim, and the seeded draw of the few-shot examples.

The paper prints its prompts with labels in brackets ("(Instruction)", "(Input Text)",
"(Few-shot example #1 text)") that say what each line is; those labels are not prompt text and
are left out. Everything else is the appendix's wording, including the JSON format shown with
single quotes, which is why answers are parsed leniently (trainables/llm/answers.py).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from trainables.data.base import Split

# A.5, zero-shot prompt ("{'prediction': emotion, 'confidence': float}" as printed).
ZERO_SHOT = (
    "You will receive a short text. Your task is to classify the emotion expressed in it into one of the "
    "following categories: {list_of_emotions}.\n"
    "You must also provide a confidence score between 0 and 1 to indicate how sure you are in the "
    "categorization. Answer only with a JSON string that has the following format: "
    "{'prediction': emotion, 'confidence': float}\n"
    "The text to classify is '{short_text}'."
)

# A.5, the structure of the few-shot prompts: the text, the numbered categories, two examples
# per emotion ("text" then "Emotion: label"), the confidence instruction and the JSON format.
FEW_SHOT_HEAD = (
    "Given the following text: {input_text}\n"
    "Classify the text into one of the following categories depending on the emotion expressed by the text:\n"
    "{numbered_emotions}\n"
    "Two example classifications for each emotion are shown below.\n"
)
FEW_SHOT_EXAMPLE = "{text}\nEmotion: {emotion}\n"
FEW_SHOT_TAIL = (
    "You must provide a confidence score between 0 and 1 to indicate how sure you are in the categorization.\n"
    "Your response must be a JSON string that has the following format: {'prediction': 'emotion', 'confidence': float}"
)


def _fill(template: str, **values: str) -> str:
    """str.format would read the JSON braces of the prompts as fields: replace the named fields
    only, in one pass (a text that contains "{short_text}" stays as it is)."""
    pattern = re.compile("|".join(re.escape("{" + name + "}") for name in values))
    return pattern.sub(lambda m: values[m.group(0)[1:-1]], template)


def zero_shot_prompt(text: str, labels: Sequence[str]) -> str:
    return _fill(ZERO_SHOT, list_of_emotions=", ".join(labels), short_text=text)


def few_shot_prompt(text: str, labels: Sequence[str], examples: Sequence[tuple[str, str]]) -> str:
    """The A.5 few-shot prompt for `text`; `examples` are (text, label name) pairs, in order."""
    numbered = "; ".join(f"{i}. {name}" for i, name in enumerate(labels, start=1))
    shots = "".join(_fill(FEW_SHOT_EXAMPLE, text=t, emotion=e) for t, e in examples)
    return _fill(FEW_SHOT_HEAD, input_text=text, numbered_emotions=numbered) + shots + FEW_SHOT_TAIL


def draw_examples(train: Split, labels: Sequence[str], per_class: int, seed: int) -> list[tuple[str, str]]:
    """`per_class` training examples of every label, drawn without replacement with `seed`.

    One draw makes one of the paper's few-shot prompts ("3 few-shot prompts with 2 examples per
    class", section 4.4); the same draw serves every test text of that prompt. Examples are
    listed class by class in the label order, as A.5 shows them (emotion1's, then emotion2's).
    """
    rng = np.random.default_rng(seed)
    out = []
    for index, name in enumerate(labels):
        rows = np.flatnonzero(train.labels == index)
        if len(rows) < per_class:
            raise ValueError(f"label {name!r} has {len(rows)} training example(s); a few-shot prompt needs {per_class}")
        for row in sorted(rng.choice(rows, size=per_class, replace=False)):
            out.append((train.texts[row], name))
    return out
