"""emocal's data layer: the paper's six datasets and user datasets, prepared as docs/method.md says.

Entry points:
- `load_dataset(name_or_spec, data_root, split_seed=13, cache_dir=None)` -> `PreparedDataset`
- `check_files(name_or_spec, data_root)`: cheap existence check before any compute
- `ood_finetune_indices(ood, percent, seed)`: nested stratified OOD fine-tuning subsets
- `label_counts(ds)`: {split: {label: count}} (the layout of the paper's tables 13-18)
- `DATASETS`: the registry of `DatasetInfo` entries
"""
from __future__ import annotations

import logging
from pathlib import Path

from trainables.data import cache as _cache
from trainables.data.base import DataError, PreparedDataset, Split
from trainables.data.registry import DATASETS, SPLITS, DatasetInfo, get_info
from trainables.data.splits import DEFAULT_SPLIT_SEED, ood_finetune_indices
from trainables.data.user import UserDatasetSpec, prepare_user, resolve_user_files

__all__ = [
    "DATASETS",
    "DataError",
    "DatasetInfo",
    "PreparedDataset",
    "Split",
    "UserDatasetSpec",
    "check_files",
    "label_counts",
    "load_dataset",
    "ood_finetune_indices", "data_fingerprint"]

_logger = logging.getLogger(__name__)


def check_files(name_or_spec: str | UserDatasetSpec, data_root: str | Path) -> None:
    """Raise DataError if a dataset's files are missing; parses nothing.

    The error names the missing file, the dataset and the exact
    `python -m orchestrator.data fetch NAME` command (issue 3), so a sweep spec can be
    validated before any compute starts.
    """
    if isinstance(name_or_spec, UserDatasetSpec):
        resolve_user_files(name_or_spec, data_root)
    else:
        get_info(name_or_spec).resolve_files(data_root)


def _files_and_settings(
    name_or_spec: str | UserDatasetSpec, data_root: Path, split_seed: int
) -> tuple[str, list[Path] | None, dict]:
    """(name, raw files to hash or None when uncacheable, preparation settings)."""
    if isinstance(name_or_spec, UserDatasetSpec):
        spec = name_or_spec
        paths = resolve_user_files(spec, data_root)
        files: list[Path] | None = []
        for p in paths:
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
        if not Path(spec.path).expanduser().exists() and not (data_root / spec.path).exists():
            files = None  # a hub dataset: no local bytes to key on, so it is not cached
        settings = {"user_spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__ if k != "path"},
                    "split_seed": split_seed}
        return spec.name, files, settings
    info = get_info(name_or_spec)
    return info.name, info.resolve_files(data_root), {"labels": info.labels, "split_seed": split_seed}


def data_fingerprint(name_or_spec: str | UserDatasetSpec, data_root: str | Path,
                     split_seed: int = DEFAULT_SPLIT_SEED) -> str:
    """A hash of the raw files' bytes and the preparation settings.

    Stage keys include it, so a changed data file (a user's CSV edited between sweeps) never
    reuses stages trained on the old one. A hub dataset has no local bytes: its name stands in.
    """
    name, files, settings = _files_and_settings(name_or_spec, Path(data_root), split_seed)
    return _cache.cache_key(name, files, settings) if files is not None else f"hub:{name}"


def load_dataset(
    name_or_spec: str | UserDatasetSpec,
    data_root: str | Path,
    *,
    split_seed: int = DEFAULT_SPLIT_SEED,
    cache_dir: str | Path | None = None,
) -> PreparedDataset:
    """Prepare a registered or user dataset, through the cache when `cache_dir` is set.

    Args:
        name_or_spec: a `DATASETS` key or a `UserDatasetSpec`.
        data_root: folder holding `<name>/` for each registered dataset.
        split_seed: seed of the stratified splits; fixed, independent of the training
            seed (docs/method.md, Data).
        cache_dir: where prepared splits are kept (keyed by the raw files' sha256 and
            these settings); None prepares from the files every time.

    Returns:
        The prepared dataset; for an OOD dataset, `train` is the OOD fine-tuning pool.
    """
    data_root = Path(data_root)
    if isinstance(name_or_spec, UserDatasetSpec):
        _check_partner(name_or_spec)
    name, files, settings = _files_and_settings(name_or_spec, data_root, split_seed)
    key = _cache.cache_key(name, files, settings) if (cache_dir is not None and files is not None) else None
    if key is not None:
        cached = _cache.load(cache_dir, name, key)
        if cached is not None:
            _logger.info("%s: loaded prepared splits from cache %s", name, cache_dir)
            return cached
    if isinstance(name_or_spec, UserDatasetSpec):
        ds = prepare_user(name_or_spec, data_root, split_seed)
    else:
        info = get_info(name_or_spec)
        assert info.prepare is not None, f"{name} has no prepare function"
        ds = info.prepare(files, split_seed)
    _logger.info("%s: prepared %d / %d / %d (drops: %s)", name, len(ds.train), len(ds.validation),
                 len(ds.test), ds.drops)
    if key is not None:
        _cache.store(cache_dir, key, ds)
    return ds


def _check_partner(spec: UserDatasetSpec) -> None:
    """An OOD user dataset whose partner is registered must share its label order."""
    if spec.role == "ood" and spec.partner in DATASETS:
        partner_labels = DATASETS[spec.partner].labels
        if spec.labels != partner_labels:
            raise DataError(f"user dataset {spec.name!r}: as OOD partner of {spec.partner!r} its labels must be "
                            f"{partner_labels} in that order, got {spec.labels}")


def label_counts(ds: PreparedDataset) -> dict[str, dict[str, int]]:
    """{split: {label: count}} for train/validation/test, every label listed (zeros too)."""
    out: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        counts = [0] * ds.num_labels
        for y in ds.split(split).labels.tolist():
            counts[y] += 1
        out[split] = dict(zip(ds.labels, counts))
    return out
