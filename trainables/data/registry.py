"""The six datasets of the paper by name: frozen `DatasetInfo` entries in `DATASETS`.

Section 4.1 and docs/method.md, Data: three ID datasets, each with its OOD partner
(GoEmotions -> DailyDialog, Empathetic Dialogues -> SSEC, ISEAR -> Emotion-Stimulus); an
OOD dataset's labels are in its ID partner's index order. Each entry also knows where the
files come from (`source`, used by `python -m orchestrator.data fetch NAME`) and the
paper's per-class counts (tables 13-18) that the preparation is checked against.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Literal, Mapping

from trainables.data import dailydialog, emotion_stimulus, empathetic_dialogues, goemotions, isear, ssec
from trainables.data._common import missing_message
from trainables.data.base import DataError, PreparedDataset

_logger = logging.getLogger(__name__)

Role = Literal["id", "ood"]
SPLITS: tuple[str, str, str] = ("train", "validation", "test")


def _counts(labels: tuple[str, ...], **per_split: tuple[int, ...]) -> Mapping[str, Mapping[str, int]]:
    return MappingProxyType({s: MappingProxyType(dict(zip(labels, c, strict=True))) for s, c in per_split.items()})


@dataclass(frozen=True)
class DatasetInfo:
    """One registered dataset.

    Attributes:
        name: registry key and folder name under the data root.
        role: "id" or "ood".
        partner: the ID dataset's OOD partner, or the OOD dataset's ID partner.
        labels: label names in index order.
        files: paths relative to `data_root/<name>/` that must exist.
        source: URL the `fetch` command downloads from.
        description: one line for listings.
        alt_files: other complete file sets that are read as well (e.g. the official
            Empathetic Dialogues release instead of conversations.csv).
        prepare: (resolved files, split_seed) -> PreparedDataset.
        fetch: (destination folder, timeout) -> written files.
        paper_counts: {split: {label: count}} from the paper's tables 13-18 (only the
            splits the paper gives).
    """

    name: str
    role: Role
    partner: str
    labels: tuple[str, ...]
    files: tuple[str, ...]
    source: str
    description: str
    alt_files: tuple[tuple[str, ...], ...] = ()
    prepare: Callable[[list[Path], int], PreparedDataset] | None = field(default=None, compare=False, repr=False)
    fetch: Callable[..., list[Path]] | None = field(default=None, compare=False, repr=False)
    paper_counts: Mapping[str, Mapping[str, int]] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    def resolve_files(self, data_root: str | Path) -> list[Path]:
        """The first complete file set under `data_root/<name>/`, else a DataError.

        The error names the missing file(s) of the main set, the dataset and the exact
        `fetch` command (issue 3, "Bad input").
        """
        folder = Path(data_root) / self.name
        for file_set in (self.files, *self.alt_files):
            paths = [folder / f for f in file_set]
            if all(p.is_file() for p in paths):
                return paths
        missing = [folder / f for f in self.files if not (folder / f).is_file()]
        message = missing_message(self.name, missing, Path(data_root))
        if self.alt_files:
            alts = "; ".join(", ".join(s) for s in self.alt_files)
            message += f" (Also accepted instead, in {folder}: {alts}.)"
        raise DataError(message)


_E = goemotions.LABELS
_P = empathetic_dialogues.LABELS
_I = isear.LABELS

DATASETS: dict[str, DatasetInfo] = {
    "goemotions": DatasetInfo(
        name="goemotions", role="id", partner="dailydialog", labels=goemotions.LABELS,
        files=goemotions.FILES, source=goemotions.SOURCE,
        description="GoEmotions simplified split, Reddit comments, Ekman 6 via table 5",
        prepare=goemotions.prepare, fetch=goemotions.fetch,
        # Table 13, reordered to (anger, disgust, fear, joy, sadness, surprise).
        paper_counts=_counts(_E, train=(4584, 523, 565, 15691, 2448, 4152),
                             validation=(596, 62, 77, 2014, 278, 497), test=(609, 77, 85, 1931, 298, 533)),
    ),
    "empathetic_dialogues": DatasetInfo(
        name="empathetic_dialogues", role="id", partner="ssec", labels=empathetic_dialogues.LABELS,
        files=empathetic_dialogues.FILES, alt_files=empathetic_dialogues.ALT_FILES,
        source=empathetic_dialogues.SOURCE,
        description="Empathetic Dialogues prompts, Plutchik 8 via table 6",
        prepare=empathetic_dialogues.prepare, fetch=empathetic_dialogues.fetch,
        # Table 14 (anger, anticipation, disgust, fear, joy, sadness, surprise, trust). The
        # disgust row is garbled in the text; validation disgust = 2,753 - the other rows = 81.
        paper_counts=_counts(_P, train=(2510, 2408, 612, 1691, 4318, 5199, 1616, 867),
                             validation=(367, 330, 81, 243, 596, 764, 249, 123),
                             test=(324, 309, 85, 214, 596, 693, 207, 114)),
    ),
    "isear": DatasetInfo(
        name="isear", role="id", partner="emotion_stimulus", labels=isear.LABELS,
        files=isear.FILES, source=isear.SOURCE,
        description="ISEAR self-reports without guilt, 60/20/20 stratified",
        prepare=isear.prepare, fetch=isear.fetch,
        # Table 15 (joy, fear, anger, sadness, disgust, shame).
        paper_counts=_counts(_I, train=(646, 645, 651, 631, 638, 626),
                             validation=(216, 215, 217, 210, 213, 208), test=(215, 215, 216, 211, 213, 209)),
    ),
    "dailydialog": DatasetInfo(
        name="dailydialog", role="ood", partner="goemotions", labels=dailydialog.LABELS,
        files=dailydialog.FILES, source=dailydialog.SOURCE,
        description="DailyDialog utterances with an emotion; OOD partner of GoEmotions",
        prepare=dailydialog.prepare, fetch=dailydialog.fetch,
        # Table 16 (no train column in the paper).
        paper_counts=_counts(_E, validation=(74, 3, 11, 604, 79, 102), test=(114, 47, 17, 980, 102, 113)),
    ),
    "ssec": DatasetInfo(
        name="ssec", role="ood", partner="empathetic_dialogues", labels=ssec.LABELS,
        files=ssec.FILES, source=ssec.SOURCE,
        description="SSEC t=0.66 single-emotion tweets; OOD partner of Empathetic Dialogues",
        prepare=ssec.prepare, fetch=ssec.fetch,
        # Table 17; its "Validation" column is the OOD pool (docs/method.md, SSEC), i.e. our train.
        paper_counts=_counts(_P, train=(462, 159, 34, 64, 285, 94, 49, 127),
                             test=(286, 158, 39, 33, 122, 49, 30, 74)),
    ),
    "emotion_stimulus": DatasetInfo(
        name="emotion_stimulus", role="ood", partner="isear", labels=emotion_stimulus.LABELS,
        files=emotion_stimulus.FILES, alt_files=emotion_stimulus.ALT_FILES,
        source=emotion_stimulus.SOURCE,
        description="Emotion-Stimulus sentences without surprise; OOD partner of ISEAR",
        prepare=emotion_stimulus.prepare, fetch=emotion_stimulus.fetch,
        # Table 18 (joy, fear, anger, sadness, disgust, shame).
        paper_counts=_counts(_I, validation=(227, 201, 229, 273, 45, 69), test=(228, 201, 229, 273, 45, 69)),
    ),
}


def get_info(name: str) -> DatasetInfo:
    """The registered entry, or a DataError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
