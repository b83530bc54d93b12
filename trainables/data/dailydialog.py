"""DailyDialog (Li et al. 2017): GoEmotions' OOD partner, utterances with an emotion.

Paper section 4.1.2 (1) and docs/method.md, DailyDialog: keep the utterances whose emotion id is not
0 (no emotion), map happiness -> joy (Ekman, table 5's names), drop duplicate (utterance,
label) pairs within a split. This gives exactly the paper's 873 validation and 1,373 test
(table 16); the OOD fine-tuning pool is the official train split so prepared (12,859).

Files (SOURCE.md): per split `<split>/dialogues_<split>.txt` (one dialogue per line, each
utterance ending in ` __eou__`) and `<split>/dialogues_emotion_<split>.txt` (one label per
utterance: 0 none, 1 anger, 2 disgust, 3 fear, 4 happiness, 5 sadness, 6 surprise).
Quirk: train dialogue 7852 has 12 utterances but 11 labels (all 0). Which utterance lacks
its label cannot be known, so the whole dialogue is dropped and its utterances counted
under `label_count_mismatch` (it holds no emotion utterance, so no count changes).
"""
from __future__ import annotations

import io
import logging
import zipfile
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
from trainables.data.goemotions import LABELS as EKMAN_LABELS

_logger = logging.getLogger(__name__)

NAME = "dailydialog"
#: Same index order as the ID partner GoEmotions.
LABELS: tuple[str, ...] = EKMAN_LABELS
_SPLITS = ("train", "validation", "test")
FILES: tuple[str, ...] = tuple(
    f"{s}/{f}" for s in _SPLITS for f in (f"dialogues_{s}.txt", f"dialogues_emotion_{s}.txt")
)
SOURCE = "http://yanran.li/files/ijcnlp_dailydialog.zip"
#: The release's emotion ids (readme.txt); 0 = no emotion is dropped.
EMOTION_IDS: dict[str, str] = {
    "1": "anger", "2": "disgust", "3": "fear", "4": "joy", "5": "sadness", "6": "surprise",
}
NO_EMOTION = "0"
_EOU = "__eou__"


def _read_split(root: Path, split: str, drops: Drops) -> list[tuple[str, int]]:
    text_path = root / split / f"dialogues_{split}.txt"
    label_path = root / split / f"dialogues_emotion_{split}.txt"
    dialogues = read_text(text_path, NAME).split("\n")
    label_lines = read_text(label_path, NAME).split("\n")
    if dialogues and dialogues[-1] == "":
        dialogues.pop()
    if label_lines and label_lines[-1] == "":
        label_lines.pop()
    if len(dialogues) != len(label_lines):
        raise DataError(f"{label_path}: {len(label_lines)} label lines but {len(dialogues)} dialogues in {text_path}")
    pairs: list[tuple[str, int]] = []
    for lineno, (dialogue, labels_line) in enumerate(zip(dialogues, label_lines), 1):
        pieces = [u.strip() for u in dialogue.split(_EOU)]
        if pieces[-1]:
            raise DataError(f"{text_path}:{lineno}: dialogue does not end with {_EOU}")
        utterances, labels = pieces[:-1], labels_line.split()
        if len(utterances) != len(labels):
            _logger.info("%s:%d: %d utterances but %d labels; dialogue dropped",
                         text_path, lineno, len(utterances), len(labels))
            drops.add("label_count_mismatch", len(utterances))
            continue
        for utterance, label in zip(utterances, labels):
            if label == NO_EMOTION:
                drops.add("no_emotion")
            elif label in EMOTION_IDS:
                pairs.append((utterance, LABELS.index(EMOTION_IDS[label])))
            else:
                raise DataError(f"{label_path}:{lineno}: unknown label {label!r}; allowed labels: 0-6")
    return pairs


def prepare(files: list[Path], split_seed: int) -> PreparedDataset:
    """Official split; `train` is the OOD fine-tuning pool (split_seed unused)."""
    root = files[0].parents[1]
    drops = Drops()
    splits = {s: to_split(dedup(_read_split(root, s, drops), drops, s)) for s in _SPLITS}
    return PreparedDataset(NAME, LABELS, splits["train"], splits["validation"], splits["test"], drops.as_dict())


def fetch(dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> list[Path]:
    """Download the release zip and unpack its nested train/validation/test zips."""
    outer = download_bytes(SOURCE, timeout)
    written: list[Path] = []
    with zipfile.ZipFile(io.BytesIO(outer)) as zf:
        for split in _SPLITS:
            inner = zf.read(f"ijcnlp_dailydialog/{split}.zip")
            members = {f"{split}/dialogues_{split}.txt": f"{split}/dialogues_{split}.txt",
                       f"{split}/dialogues_emotion_{split}.txt": f"{split}/dialogues_emotion_{split}.txt",
                       f"{split}/dialogues_act_{split}.txt": f"{split}/dialogues_act_{split}.txt"}
            written += extract_zip_members(inner, members, dest)
    return written
