"""Emotion-Stimulus (Ghazi et al. 2015): ISEAR's OOD partner.

Paper section 4.1.2 (3) and docs/method.md, Emotion-Stimulus: all 2,414 sentences; drop `surprise` (ISEAR
has none); map happy -> joy, sad -> sadness; drop exact (text, label) duplicates; split 95%
evenly (stratified, fixed split seed) into validation and test (paper table 18:
1,044 / 1,045); the other 5% is the OOD fine-tuning pool ("for Emotion-Stimulus 5% is the
whole pool").

Files (SOURCE.md): `emotion-stimulus.csv` (header `Emotion,Text`, standard CSV quoting,
CRLF line endings, no final newline; the only public copy holding the 1,594 no-cause
sentences). The release's own tag format (`Emotion Cause.txt` + `No Cause.txt`, lines
`<emo>text <cause>span<\\cause> ...<\\emo>`) is read too when the CSV is absent. Texts are
stripped of surrounding whitespace (the no-cause sentences keep a trailing space).
"""
from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

from trainables.data._common import (
    DOWNLOAD_TIMEOUT_S,
    Drops,
    dedup,
    download_file,
    map_label,
    read_text,
    to_split,
)
from trainables.data.base import DataError, PreparedDataset
from trainables.data.isear import LABELS as ISEAR_LABELS
from trainables.data.splits import round_half_up, stratified_split

_logger = logging.getLogger(__name__)

NAME = "emotion_stimulus"
#: Same index order as the ID partner ISEAR.
LABELS: tuple[str, ...] = ISEAR_LABELS
CSV_FILE = "emotion-stimulus.csv"
FILES: tuple[str, ...] = (CSV_FILE,)
ALT_FILES: tuple[tuple[str, ...], ...] = (("Emotion Cause.txt", "No Cause.txt"),)
SOURCE = "https://raw.githubusercontent.com/lukasgarbas/nlp-text-emotion/master/data/datasets/emotion-stimulus.csv"
#: docs/method.md, Emotion-Stimulus: happy -> joy, sad -> sadness; surprise is dropped.
LABEL_MAP: dict[str, str] = {
    "happy": "joy", "sad": "sadness", "fear": "fear", "anger": "anger", "disgust": "disgust", "shame": "shame",
}
DROPPED_LABELS = ("surprise",)
#: docs/method.md, Emotion-Stimulus: 95% split evenly (stratified) into validation and test.
EVAL_FRACTION = 0.95
_TAGGED = re.compile(r"^<(\w+)>(.*)<\\(\w+)>\s*$")
_CAUSE_TAG = re.compile(r"<\\?cause>")


def _read_csv(path: Path) -> list[tuple[str, str, str]]:
    reader = csv.reader(io.StringIO(read_text(path, NAME), newline=""))
    header = next(reader, None)
    if header != ["Emotion", "Text"]:
        raise DataError(f"{path}:1: expected header Emotion,Text, got {header}")
    rows = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if len(row) != 2:
            raise DataError(f"{where}: expected 2 fields (Emotion, Text), got {len(row)}")
        rows.append((row[0], row[1], where))
    return rows


def _read_tagged(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for lineno, line in enumerate(read_text(path, NAME).splitlines(), 1):
        if not line.strip():
            continue
        m = _TAGGED.match(line)
        if m is None or m.group(1) != m.group(3):
            raise DataError(f"{path}:{lineno}: expected <emotion>sentence<\\emotion>")
        rows.append((m.group(1), _CAUSE_TAG.sub("", m.group(2)), f"{path}:{lineno}"))
    return rows


def prepare(files: list[Path], split_seed: int) -> PreparedDataset:
    """Drop surprise, map labels, dedup, then pool 5% / validation / test evenly."""
    rows = _read_csv(files[0]) if len(files) == 1 else [r for f in files for r in _read_tagged(f)]
    drops = Drops()
    pairs = []
    for emotion, text, where in rows:
        if emotion in DROPPED_LABELS:
            drops.add(f"label_{emotion}")
            continue
        pairs.append((text.strip(), LABELS.index(map_label(emotion, LABEL_MAP, where))))
    full = to_split(dedup(pairs, drops, "all"))
    n_eval = round_half_up(EVAL_FRACTION * len(full))
    n_val = n_eval // 2  # the paper's 1,044 / 1,045: validation gets the smaller half
    sizes = [len(full) - n_eval, n_val, n_eval - n_val]
    pool, validation, test = (full.subset(i) for i in stratified_split(full.labels, sizes, split_seed))
    return PreparedDataset(NAME, LABELS, pool, validation, test, drops.as_dict())


def fetch(dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> list[Path]:
    """Download the processed CSV (SOURCE.md: the only public copy of all 2,414 sentences)."""
    return [download_file(SOURCE, dest / CSV_FILE, timeout)]
