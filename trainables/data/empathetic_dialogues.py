"""Empathetic Dialogues (Rashkin et al. 2019), prompts only, mapped to Plutchik's eight.

Paper section 4.1.1 (2) and docs/method.md, Empathetic Dialogues: one sample per conversation, its `prompt`
(the situation) with its emotion (`context`), mapped by table 6; drop exact (text, label)
duplicates within a split; official split. The official release writes commas as
`_comma_`; they are restored. Expected from `conversations.csv`: 19,240 / 2,752 / 2,542
(paper table 14: 19,221 / 2,753 / 2,542).

Two layouts are read (docs/method.md, Empathetic Dialogues):
- `conversations.csv` (this project's data root; SOURCE.md): `conv_id, split, emotion,
  prompt`, standard CSV quoting, real commas, split in {train, valid, test}.
- the official release, `empatheticdialogues/{train,valid,test}.csv` (or the three files
  directly in the dataset folder): one row per utterance,
  `conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags`, no quoting,
  commas inside fields written `_comma_`; split on "," as ParlAI does.
"""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from trainables.data._common import (
    DOWNLOAD_TIMEOUT_S,
    Drops,
    dedup,
    download_bytes,
    extract_tar_members,
    map_label,
    read_text,
    to_split,
)
from trainables.data.base import DataError, PreparedDataset

_logger = logging.getLogger(__name__)

NAME = "empathetic_dialogues"
#: Plutchik's eight, alphabetical; SSEC (the OOD partner) uses the same order.
LABELS: tuple[str, ...] = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
FILES: tuple[str, ...] = ("conversations.csv",)
OFFICIAL_FILES: tuple[str, ...] = (
    "empatheticdialogues/train.csv",
    "empatheticdialogues/valid.csv",
    "empatheticdialogues/test.csv",
)
ALT_FILES: tuple[tuple[str, ...], ...] = (OFFICIAL_FILES, ("train.csv", "valid.csv", "test.csv"))
SOURCE = "https://dl.fbaipublicfiles.com/parlai/empatheticdialogues/empatheticdialogues.tar.gz"

#: Paper table 6 (Plutchik mapping for Empathetic Dialogues); all 32 `context` labels.
PLUTCHIK: dict[str, str] = {
    "disgusted": "disgust",
    **{k: "trust" for k in ("trusting", "faithful")},
    **{k: "surprise" for k in ("surprised", "impressed")},
    **{k: "fear" for k in ("afraid", "terrified", "apprehensive")},
    **{k: "anger" for k in ("angry", "annoyed", "furious", "jealous")},
    **{k: "anticipation" for k in ("anticipating", "hopeful", "prepared", "anxious")},
    **{k: "joy" for k in ("joyful", "content", "proud", "excited", "grateful", "confident", "caring")},
    **{
        k: "sadness"
        for k in (
            "sad", "devastated", "lonely", "disappointed", "guilty", "ashamed",
            "embarrassed", "nostalgic", "sentimental",
        )
    },
}
_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


def _read_conversations(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """conversations.csv -> {split: [(prompt, emotion, where)]}."""
    text = read_text(path, NAME)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header != ["conv_id", "split", "emotion", "prompt"]:
        raise DataError(f"{path}:1: expected header conv_id,split,emotion,prompt, got {header}")
    out: dict[str, list[tuple[str, str, str]]] = {s: [] for s in _SPLITS.values()}
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if len(row) != 4:
            raise DataError(f"{where}: expected 4 fields (conv_id, split, emotion, prompt), got {len(row)}")
        _, split, emotion, prompt = row
        if split not in _SPLITS:
            raise DataError(f"{where}: unknown split {split!r}; allowed: {', '.join(_SPLITS)}")
        out[_SPLITS[split]].append((prompt.replace("_comma_", ","), emotion, where))
    return out


def _read_official(path: Path) -> list[tuple[str, str, str]]:
    """One official train/valid/test.csv -> [(prompt, context, where)], first row per conv_id."""
    lines = read_text(path, NAME).split("\n")
    if not lines[0].startswith("conv_id,utterance_idx,context,prompt"):
        raise DataError(f"{path}:1: expected the official header conv_id,utterance_idx,context,prompt,...")
    seen: set[str] = set()
    out: list[tuple[str, str, str]] = []
    for lineno, line in enumerate(lines[1:], 2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < 6:
            raise DataError(f"{path}:{lineno}: expected at least 6 comma-separated fields "
                            f"(conv_id,utterance_idx,context,prompt,speaker_idx,utterance), got {len(fields)}")
        conv_id, _, context, prompt = fields[:4]
        if conv_id in seen:
            continue  # later utterances of a conversation already taken: not a drop
        seen.add(conv_id)
        out.append((prompt.replace("_comma_", ",").strip(), context, f"{path}:{lineno}"))
    return out


def prepare(files: list[Path], split_seed: int) -> PreparedDataset:
    """Prepare from whichever layout `files` is (1 file: conversations.csv; 3: official)."""
    if len(files) == 1:
        raw = _read_conversations(files[0])
    else:
        raw = {split: _read_official(f) for split, f in zip(("train", "validation", "test"), files)}
    drops = Drops()
    splits = {}
    for split, rows in raw.items():
        pairs = [(p, LABELS.index(map_label(e, PLUTCHIK, w))) for p, e, w in rows]
        splits[split] = to_split(dedup(pairs, drops, split))
    return PreparedDataset(NAME, LABELS, splits["train"], splits["validation"], splits["test"], drops.as_dict())


def fetch(dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> list[Path]:
    """Download the official tarball (28 MB) and extract train/valid/test.csv into `dest`."""
    data = download_bytes(SOURCE, timeout)
    return extract_tar_members(data, {f: f for f in OFFICIAL_FILES}, dest)
