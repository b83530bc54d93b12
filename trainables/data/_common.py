"""Helpers every loader shares: counted drops, within-split dedup, label checks, downloads.

docs/method.md, Data: every dataset drops exact duplicates (same text, same label) within a
split, and nothing is dropped silently (issue 3): every drop goes through `Drops`.
"""
from __future__ import annotations

import io
import logging
import shutil
import tarfile
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from trainables.data.base import DataError, Split

_logger = logging.getLogger(__name__)

#: Seconds before a download gives up (the project's machines are offline: fail fast).
DOWNLOAD_TIMEOUT_S = 20.0


class Drops(Counter):
    """Counts dropped rows by reason; becomes `PreparedDataset.drops` (a plain dict)."""

    def add(self, reason: str, n: int = 1) -> None:
        if n:
            self[reason] += n

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in sorted(self.items())}


def dedup(pairs: Iterable[tuple[str, int]], drops: Drops, split: str) -> list[tuple[str, int]]:
    """Keep the first of every exact (text, label) pair; count the rest as `duplicate_<split>`."""
    seen: set[tuple[str, int]] = set()
    out: list[tuple[str, int]] = []
    for pair in pairs:
        if pair in seen:
            drops.add(f"duplicate_{split}")
            continue
        seen.add(pair)
        out.append(pair)
    return out


def to_split(pairs: Sequence[tuple[str, int]]) -> Split:
    """(text, label) pairs -> `Split` with int64 labels."""
    return Split(tuple(t for t, _ in pairs), np.asarray([y for _, y in pairs], dtype=np.int64))


def label_index(name: str, labels: Sequence[str], where: str) -> int:
    """Index of a label name, or a DataError naming the label, the allowed ones and where."""
    try:
        return list(labels).index(name)
    except ValueError:
        raise DataError(f"{where}: unknown label {name!r}; allowed labels: {', '.join(labels)}") from None


def map_label(raw: str, mapping: Mapping[str, str], where: str) -> str:
    """Map a raw label through a table (paper tables 5/6), naming the label if it is unknown."""
    try:
        return mapping[raw]
    except KeyError:
        raise DataError(
            f"{where}: unknown label {raw!r}; allowed labels: {', '.join(sorted(mapping))}"
        ) from None


def read_text(path: Path, dataset: str) -> str:
    """Read a UTF-8 file, turning a missing file into the DataError the issue asks for."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(missing_message(dataset, [path], path.parent)) from None


def missing_message(dataset: str, missing: Sequence[Path], data_root: Path | None = None) -> str:
    """The message for missing files: which files, which dataset, and the fetch command."""
    root = f" --data-root {data_root}" if data_root is not None else ""
    files = ", ".join(str(p) for p in missing)
    return (
        f"dataset {dataset!r}: missing file(s) {files}. Download them with "
        f"`python -m orchestrator.data fetch {dataset}{root}`, or put them there by hand "
        f"(see the dataset's SOURCE.md)."
    )


# ---- downloads (used by `python -m orchestrator.data fetch`) ---------------------------


def download_bytes(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """GET a URL; network errors propagate (the CLI reports them)."""
    _logger.info("downloading %s", url)
    req = urllib.request.Request(url, headers={"User-Agent": "emocal-data-fetch"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (fixed https URLs)
        return resp.read()


def download_file(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download `url` to `dest` (written atomically through a .part file)."""
    data = download_bytes(url, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(data)
    part.replace(dest)
    return dest


def extract_zip_members(data: bytes, members: Mapping[str, str], dest_dir: Path) -> list[Path]:
    """Write chosen zip members (member name -> relative target path) under dest_dir."""
    out: list[Path] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member, target in members.items():
            path = dest_dir / target
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(path)
    return out


def extract_tar_members(data: bytes, members: Mapping[str, str], dest_dir: Path) -> list[Path]:
    """Write chosen members of a (gzipped) tar archive under dest_dir."""
    out: list[Path] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for member, target in members.items():
            src = tf.extractfile(member)
            if src is None:
                raise DataError(f"archive member {member} is not a file")
            path = dest_dir / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(src.read())
            out.append(path)
    return out
