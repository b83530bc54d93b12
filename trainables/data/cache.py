"""Prepared-split cache, keyed by the raw files' sha256 and the preparation settings.

Issue 3: a sweep of hundreds of trials must prepare each dataset once. A prepared dataset
is stored as one JSON file (no pickle: loading a cache file can never run code), named
`<dataset>-<key prefix>.json`. The key hashes every raw file read (its name and sha256),
the split seed, the label list, the loader's preparation version and any other settings,
so a changed file or setting is a new key and a stale entry is never read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trainables.data.base import PreparedDataset, Split

_logger = logging.getLogger(__name__)

#: Bump when any loader's output changes for the same files, to invalidate old entries.
PREPARATION_VERSION = 1
_FORMAT = 1
_hash_memo: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, memoised per (path, size, mtime) within the process."""
    st = path.stat()
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo_key not in _hash_memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _hash_memo[memo_key] = h.hexdigest()
    return _hash_memo[memo_key]


def cache_key(name: str, files: Sequence[Path], settings: Mapping[str, Any]) -> str:
    """Hex sha256 over the dataset name, the files' names and hashes, and the settings."""
    payload = {
        "name": name,
        "version": PREPARATION_VERSION,
        "files": [[Path(f).name, file_sha256(Path(f))] for f in files],
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def cache_path(cache_dir: str | Path, name: str, key: str) -> Path:
    return Path(cache_dir) / f"{name}-{key[:24]}.json"


def load(cache_dir: str | Path, name: str, key: str) -> PreparedDataset | None:
    """The cached dataset for `key`, or None (missing, unreadable or another key)."""
    path = cache_path(cache_dir, name, key)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT or data.get("key") != key:
            return None
        splits = {
            s: Split(tuple(data["splits"][s]["texts"]), np.asarray(data["splits"][s]["labels"], dtype=np.int64))
            for s in ("train", "validation", "test")
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        _logger.warning("ignoring unreadable cache entry %s: %s", path, err)
        return None
    _logger.debug("cache hit %s", path)
    return PreparedDataset(data["name"], tuple(data["labels"]), splits["train"], splits["validation"],
                           splits["test"], dict(data["drops"]))


def store(cache_dir: str | Path, key: str, ds: PreparedDataset) -> Path:
    """Write `ds` under `key` atomically (a temp file renamed into place)."""
    path = cache_path(cache_dir, ds.name, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": _FORMAT,
        "key": key,
        "name": ds.name,
        "labels": list(ds.labels),
        "drops": ds.drops,
        "splits": {
            s: {"texts": list(ds.split(s).texts), "labels": ds.split(s).labels.tolist()}
            for s in ("train", "validation", "test")
        },
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    os.replace(tmp, path)
    _logger.debug("cached %s", path)
    return path
