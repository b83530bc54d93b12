"""SSEC (Schuff et al. 2017), t=0.66: Empathetic Dialogues' OOD partner, single-emotion tweets.

Paper section 4.1.2 (2) and docs/method.md, SSEC: from the 0.66-agreement train and test files
drop tweets with several emotions and tweets with none (and the two
`XXXXXXXXXXXX EMPTY ANNOTATION` placeholder lines of the train file); drop exact
duplicates within a split; 5% of the train file so prepared (stratified, fixed split seed)
is validation, the rest is the OOD fine-tuning pool; test = the test file. This gives
exactly table 17's "Test" column (791). Table 17's "Validation" column (1,274) is in fact
the OOD pool: 95% of the 1,354 single-emotion train tweets is 1,286.

Files (SOURCE.md): `{train,test}-combined-0.66.csv`, TAB-separated, no header, 9 fields:
8 emotion columns in the fixed order Anger, Anticipation, Disgust, Fear, Joy, Sadness,
Surprise, Trust (the emotion's name, or `---`), then the tweet.
"""
from __future__ import annotations

import logging
from pathlib import Path

from trainables.data._common import (
    DOWNLOAD_TIMEOUT_S,
    Drops,
    dedup,
    download_bytes,
    extract_zip_members,
    read_text,
    to_split,
)
from trainables.data.base import DataError, PreparedDataset
from trainables.data.empathetic_dialogues import LABELS as PLUTCHIK_LABELS
from trainables.data.splits import split_sizes, stratified_split

_logger = logging.getLogger(__name__)

NAME = "ssec"
#: Same index order as the ID partner Empathetic Dialogues (and as SSEC's own columns).
LABELS: tuple[str, ...] = PLUTCHIK_LABELS
TRAIN_FILE = "train-combined-0.66.csv"
TEST_FILE = "test-combined-0.66.csv"
FILES: tuple[str, ...] = (TRAIN_FILE, TEST_FILE)
SOURCE = "http://www.romanklinger.de/ssec/ssec-aggregated-withtext.zip"
#: docs/method.md, SSEC: 5% of the prepared train file is validation.
VALIDATION_FRACTION = 0.05
EMPTY_ANNOTATION = "XXXXXXXXXXXX EMPTY ANNOTATION"
ABSENT = "---"
_COLUMNS = ("Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness", "Surprise", "Trust")


def _read(path: Path, drops: Drops, split: str) -> list[tuple[str, int]]:
    lines = read_text(path, NAME).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pairs: list[tuple[str, int]] = []
    for lineno, line in enumerate(lines, 1):
        if line.strip() == EMPTY_ANNOTATION:
            drops.add(f"empty_annotation_{split}")
            continue
        fields = line.split("\t")
        if len(fields) != 9:
            raise DataError(f"{path}:{lineno}: expected 9 TAB-separated fields (8 emotions, text), got {len(fields)}")
        present = []
        for column, value in zip(_COLUMNS, fields[:8]):
            if value == column:
                present.append(column.lower())
            elif value != ABSENT:
                raise DataError(f"{path}:{lineno}: unknown label {value!r} in the {column} column; "
                                f"allowed: {column!r} or {ABSENT!r}")
        if not present:
            drops.add(f"no_emotion_{split}")
        elif len(present) > 1:
            drops.add(f"multiple_emotions_{split}")
        else:
            pairs.append((fields[8], LABELS.index(present[0])))
    return pairs


def prepare(files: list[Path], split_seed: int) -> PreparedDataset:
    """Prepare train/test; cut 5% of train (stratified, `split_seed`) as validation."""
    root = files[0].parent
    drops = Drops()
    train_all = to_split(dedup(_read(root / TRAIN_FILE, drops, "train"), drops, "train"))
    test = to_split(dedup(_read(root / TEST_FILE, drops, "test"), drops, "test"))
    sizes = split_sizes(len(train_all), (1 - VALIDATION_FRACTION, VALIDATION_FRACTION))
    pool_idx, val_idx = stratified_split(train_all.labels, sizes, split_seed)
    return PreparedDataset(NAME, LABELS, train_all.subset(pool_idx), train_all.subset(val_idx), test, drops.as_dict())


def fetch(dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> list[Path]:
    """Download the authors' aggregated archive and extract the two 0.66 files."""
    data = download_bytes(SOURCE, timeout)
    return extract_zip_members(data, {f"ssec-aggregated/{f}": f for f in FILES}, dest)
