"""ISEAR (Scherer & Wallbott 1994): six emotions, no guilt, stratified 60/20/20.

Paper section 4.1.1 (3) and docs/method.md, ISEAR: drop the reports with no description
("No response", "Never experienced", "Does not apply" and the like; the paper counts 154),
drop `guilt` (absent from the OOD partner Emotion-Stimulus), drop exact (text, label)
duplicates, then split 60/20/20 stratified with the fixed split seed (independent of the
training seed). Paper table 15: 3,837 / 1,279 / 1,279.

File (SOURCE.md): `isear.csv`, `|`-separated, no quoting, 43 header fields, every line
ends with `|`; 163 rows hold extra `|` inside SIT, so a row is read as its first 40 fields,
its last 2 (STATE and the empty trailing field), and SIT = everything in between.
`Field1` (index 36) holds the emotion name. The text is kept as published (including
the `á` line-break artifacts), only stripped of surrounding whitespace.

No-description reports are found by `NO_DESCRIPTION`, matched on a lower-cased,
punctuation-free copy of short texts (<= 16 words). It was written by reading every short
and every bracketed SIT of the file: it drops 156 reports (33 of them guilt; the paper
says 154), e.g. "[ No response.]" (78), "NO RESPONSE." (7), "[ Never experienced.]",
"Doesn't apply.", "Not applicable to myself.", "[ Do not know.]", "Can't remember ...",
"[ Same as in anger.]" (a pointer to another answer, no description of its own),
"Nothing.", "None.", "Blank.". Texts that merely start alike but describe an event
("[ Same as above - friends who torture animals.]") are kept.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from trainables.data._common import (
    DOWNLOAD_TIMEOUT_S,
    Drops,
    dedup,
    download_file,
    label_index,
    read_text,
    to_split,
)
from trainables.data.base import DataError, PreparedDataset
from trainables.data.splits import split_sizes, stratified_split

_logger = logging.getLogger(__name__)

NAME = "isear"
#: The paper's order (section 4.1.1; docs/method.md, Data); Emotion-Stimulus uses it too.
LABELS: tuple[str, ...] = ("joy", "fear", "anger", "sadness", "disgust", "shame")
FILES: tuple[str, ...] = ("isear.csv",)
SOURCE = "https://raw.githubusercontent.com/sinmaniphel/py_isear_dataset/master/isear.csv"
#: docs/method.md, ISEAR: split 60/20/20, stratified.
FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
DROPPED_LABELS = ("guilt",)

_N_FIELDS = 43
_EMOTION_FIELD = 36
_HEAD_FIELDS = 40  # SIT is field 40 when the row has no stray `|`
_TAIL_FIELDS = 2  # STATE and the empty field after the final `|`
_MAX_WORDS = 16

NO_DESCRIPTION = re.compile(
    r"^(?:sorry |honestly |i )?(?:"
    r"no respon|no repon|no description|no answer|nothing$|none$|blank$|never$"
    r"|never experienced|never felt|never really had|have never felt|have not felt|was never"
    r"|do not know$|dont know$|does ?n[o]?t apply|doesnt apply|not applicable"
    r"|am quite shameless not applicable"
    r"|(?:do not|can ?not|cant|cannot) (?:remember|recall|think of|describe)"
    r"|(?:the )?same as (?:in |for )|as for |has not really happened|this emotion has never"
    r")"
)


def _normalise(text: str) -> str:
    """Lower case, no punctuation or `á` artifacts, single spaces (only for matching)."""
    text = re.sub(r"[^a-z' ]", " ", text.lower().replace("á", " ")).replace("'", "")
    return " ".join(text.split())


def is_no_description(text: str) -> bool:
    """True for a report that describes no event (see the module docstring)."""
    norm = _normalise(text)
    return len(norm.split()) <= _MAX_WORDS and NO_DESCRIPTION.search(norm) is not None


def read_rows(path: Path) -> list[tuple[str, str, int]]:
    """isear.csv -> [(emotion, SIT text, line number)], robust to `|` inside SIT."""
    lines = read_text(path, NAME).split("\n")
    header = lines[0].split("|")
    if len(header) != _N_FIELDS or header[_EMOTION_FIELD] != "Field1" or header[_HEAD_FIELDS] != "SIT":
        raise DataError(f"{path}:1: expected the 43-field ISEAR header with Field1 at 37 and SIT at 41")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line:
            continue
        fields = line.split("|")
        if len(fields) < _N_FIELDS:
            raise DataError(f"{path}:{lineno}: expected at least {_N_FIELDS} `|`-separated fields, got {len(fields)}")
        sit = "|".join(fields[_HEAD_FIELDS:-_TAIL_FIELDS]).strip()
        rows.append((fields[_EMOTION_FIELD], sit, lineno))
    return rows


def prepare(files: list[Path], split_seed: int) -> PreparedDataset:
    """Drop no-description reports and guilt, dedup, split 60/20/20 with `split_seed`."""
    path = files[0]
    drops = Drops()
    pairs = []
    for emotion, sit, lineno in read_rows(path):
        if not sit or is_no_description(sit):
            drops.add("no_description")
        elif emotion in DROPPED_LABELS:
            drops.add(f"label_{emotion}")
        else:
            pairs.append((sit, label_index(emotion, LABELS + DROPPED_LABELS, f"{path}:{lineno}")))
    pairs = dedup(pairs, drops, "all")
    split = to_split(pairs)
    parts = stratified_split(split.labels, split_sizes(len(split), FRACTIONS), split_seed)
    train, validation, test = (split.subset(p) for p in parts)
    return PreparedDataset(NAME, LABELS, train, validation, test, drops.as_dict())


def fetch(dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> list[Path]:
    """Download isear.csv from the py_isear_dataset repository (SOURCE.md)."""
    return [download_file(SOURCE, dest / "isear.csv", timeout)]
