"""GoEmotions (Demszky et al. 2020), "simplified" split, mapped to Ekman's six emotions.

Paper section 4.1.1 (1) and docs/method.md, GoEmotions: drop `neutral`, map each of the 27 labels to
Ekman by table 5, drop samples that still carry more than one Ekman label (and those left
with none, i.e. neutral-only), drop exact (text, label) duplicates within a split; keep the
official train/dev/test split. Expected: 27,980 / 3,524 / 3,534 (paper table 13:
27,963 / 3,524 / 3,533).

Files (SOURCE.md): `{train,dev,test}.tsv` = `text<TAB>label ids<TAB>comment id`, no header,
no quoting (texts hold bare `"`), and `emotions.txt` with the 28 names in id order.
"""
from __future__ import annotations

import logging
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

_logger = logging.getLogger(__name__)

NAME = "goemotions"
#: One fixed Ekman order, shared with the OOD partner DailyDialog (alphabetical).
LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
FILES: tuple[str, ...] = ("train.tsv", "dev.tsv", "test.tsv", "emotions.txt")
SOURCE = "https://raw.githubusercontent.com/google-research/google-research/master/goemotions/data/"

#: Paper table 5 (Ekman mapping for GoEmotions).
EKMAN: dict[str, str] = {
    "disgust": "disgust",
    **{k: "fear" for k in ("fear", "nervousness")},
    **{k: "anger" for k in ("anger", "annoyance", "disapproval")},
    **{k: "surprise" for k in ("surprise", "realization", "confusion", "curiosity")},
    **{k: "sadness" for k in ("sadness", "disappointment", "embarrassment", "grief", "remorse")},
    **{
        k: "joy"
        for k in (
            "joy", "relief", "gratitude", "approval", "admiration", "pride", "love",
            "desire", "caring", "optimism", "amusement", "excitement",
        )
    },
}
NEUTRAL = "neutral"
_SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}


def _read_split(path: Path, names: list[str], drops: Drops) -> list[tuple[str, int]]:
    pairs: list[tuple[str, int]] = []
    for lineno, line in enumerate(read_text(path, NAME).split("\n"), 1):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{path}:{lineno}: expected 3 TAB-separated fields (text, labels, id), got {len(fields)}")
        text, ids, _ = fields
        ekman: set[str] = set()
        for raw in ids.split(","):
            if not raw.isdigit() or int(raw) >= len(names):
                raise DataError(f"{path}:{lineno}: bad label id {raw!r}; allowed ids 0..{len(names) - 1}")
            name = names[int(raw)]
            if name != NEUTRAL:
                ekman.add(map_label(name, EKMAN, f"{path}:{lineno}"))
        if not ekman:
            drops.add("neutral_only")
        elif len(ekman) > 1:
            drops.add("multiple_ekman_labels")
        else:
            pairs.append((text, LABELS.index(ekman.pop())))
    return pairs


def prepare(files: list[Path], split_seed: int) -> PreparedDataset:
    """Read the official split (split_seed is unused: the split is official)."""
    root = files[0].parent
    names = [n.strip() for n in read_text(root / "emotions.txt", NAME).split("\n") if n.strip()]
    if len(names) != 28 or names[-1] != NEUTRAL:
        raise DataError(f"{root / 'emotions.txt'}: expected 28 label names ending in 'neutral', got {len(names)}")
    drops = Drops()
    splits = {s: to_split(dedup(_read_split(root / f, names, drops), drops, s)) for s, f in _SPLIT_FILES.items()}
    return PreparedDataset(NAME, LABELS, splits["train"], splits["validation"], splits["test"], drops.as_dict())


def fetch(dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> list[Path]:
    """Download the four official files from google-research into `dest`."""
    return [download_file(SOURCE + f, dest / f, timeout) for f in FILES]
