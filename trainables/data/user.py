"""A user's own dataset: CSV/TSV, JSONL, or a Hugging Face `datasets` dataset.

Issue 3: a spec names a file (or a local `save_to_disk` folder, or a hub name), its text
and label columns, the label list, and optional validation/test files or split fractions,
as an ID dataset or as the OOD partner of one. It is prepared like the paper's datasets
(docs/method.md, Data: exact (text, label) duplicates dropped within a split, every drop counted;
missing splits cut stratified with the fixed split seed). Labels may be given as names or
as integer indices into `labels` (HF `ClassLabel` columns are read through their names).

Relative paths are looked up under the data root first, then the working directory.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from trainables.data._common import Drops, dedup, missing_message, read_text, to_split
from trainables.data.base import DataError, PreparedDataset, Split
from trainables.data.splits import split_sizes, stratified_split

_logger = logging.getLogger(__name__)

_SPLITS = ("train", "validation", "test")
#: HF DatasetDict split names accepted for validation.
_VALIDATION_NAMES = ("validation", "valid", "dev")


@dataclass(frozen=True)
class UserDatasetSpec:
    """A user dataset.

    Attributes:
        name: dataset name (shown in logs and stats; must not be a registered name).
        path: CSV/TSV, JSONL, a local HF `save_to_disk` folder, or a hub name.
        text_column: column holding the text.
        label_column: column holding the label (a name from `labels` or its index).
        labels: the allowed label names, in index order (required).
        validation_path: optional validation file; cut from `path` when absent.
        test_path: optional test file; cut from `path` when absent.
        split_fractions: (train, validation, test) fractions used to cut the absent splits.
        role: "id" or "ood" (for "ood", `train` is the OOD fine-tuning pool).
        partner: the OOD partner (role "id") or ID partner (role "ood"; required).
    """

    name: str
    path: str
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] = ()
    validation_path: str | None = None
    test_path: str | None = None
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    role: Literal["id", "ood"] = "id"
    partner: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))
        if not self.labels:
            raise DataError(f"user dataset {self.name!r}: `labels` must list the label names in index order")
        if len(set(self.labels)) != len(self.labels):
            raise DataError(f"user dataset {self.name!r}: duplicate names in labels {self.labels}")
        if self.role not in ("id", "ood"):
            raise DataError(f"user dataset {self.name!r}: role must be 'id' or 'ood', got {self.role!r}")
        if self.role == "ood" and not self.partner:
            raise DataError(f"user dataset {self.name!r}: an OOD dataset needs its ID `partner`")
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions) or abs(
            sum(self.split_fractions) - 1.0
        ) > 1e-6:
            raise DataError(f"user dataset {self.name!r}: split_fractions must be 3 non-negative numbers "
                            f"summing to 1, got {self.split_fractions}")


def _resolve(path: str, data_root: Path) -> Path | None:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for candidate in (data_root / p, Path.cwd() / p):
        if candidate.exists():
            return candidate
    return None


def _is_hub_name(path: str) -> bool:
    """`owner/name` or `name` with no file suffix: read with `datasets.load_dataset`."""
    return not Path(path).suffix and path.count("/") <= 1 and not path.startswith((".", "/", "~"))


def resolve_user_files(spec: UserDatasetSpec, data_root: str | Path) -> list[Path]:
    """The local files/folders of the spec (cheap existence check; [] for a hub name).

    Raises:
        DataError: a named local file is missing (names the file and the dataset).
    """
    root = Path(data_root)
    out: list[Path] = []
    for field_name in ("path", "validation_path", "test_path"):
        value = getattr(spec, field_name)
        if value is None:
            continue
        found = _resolve(value, root)
        if found is None:
            if field_name == "path" and _is_hub_name(value):
                continue  # a hub name: nothing local to check
            raise DataError(
                f"user dataset {spec.name!r}: {field_name} {value!r} not found (looked in {root} and {Path.cwd()}); "
                f"put the file there or fix the path"
            )
        out.append(found)
    return out


# ---- reading rows ----------------------------------------------------------------------


def _rows_csv(path: Path, spec: UserDatasetSpec) -> Iterator[tuple[Any, Any, str]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(read_text(path, spec.name), newline=""), delimiter=delimiter)
    fields = reader.fieldnames or []
    for col in (spec.text_column, spec.label_column):
        if col not in fields:
            raise DataError(f"{path}:1: no column {col!r}; columns are {fields}")
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise DataError(f"{where}: expected {len(fields)} fields ({', '.join(fields)})")
        yield row[spec.text_column], row[spec.label_column], where


def _rows_jsonl(path: Path, spec: UserDatasetSpec) -> Iterator[tuple[Any, Any, str]]:
    for lineno, line in enumerate(read_text(path, spec.name).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected a JSON object per line")
        for col in (spec.text_column, spec.label_column):
            if col not in obj:
                raise DataError(f"{where}: no key {col!r}; keys are {sorted(obj)}")
        yield obj[spec.text_column], obj[spec.label_column], where


def _rows_hf(dataset: Any, where: str, spec: UserDatasetSpec) -> Iterator[tuple[Any, Any, str]]:
    cols = dataset.column_names
    for col in (spec.text_column, spec.label_column):
        if col not in cols:
            raise DataError(f"{where}: no column {col!r}; columns are {cols}")
    feature = dataset.features[spec.label_column]
    names = getattr(feature, "names", None)  # a ClassLabel column: read through its names
    for i, (text, label) in enumerate(zip(dataset[spec.text_column], dataset[spec.label_column])):
        yield text, (names[label] if names is not None and isinstance(label, int) else label), f"{where} row {i}"


def _load_hf(path: Path | None, spec: UserDatasetSpec) -> dict[str, Any]:
    """{split: datasets.Dataset} from a save_to_disk folder or the hub."""
    import datasets  # heavy: only for HF inputs

    try:
        obj = datasets.load_from_disk(str(path)) if path is not None else datasets.load_dataset(spec.path)
    except Exception as err:  # noqa: BLE001 - any failure becomes a DataError naming the input
        raise DataError(f"user dataset {spec.name!r}: cannot load Hugging Face dataset {spec.path!r}: {err}") from err
    if isinstance(obj, datasets.DatasetDict):
        out = {"train": obj["train"]} if "train" in obj else {}
        if not out:
            raise DataError(f"{spec.path}: a DatasetDict needs a 'train' split; it has {list(obj)}")
        for alias in _VALIDATION_NAMES:
            if alias in obj:
                out["validation"] = obj[alias]
                break
        if "test" in obj:
            out["test"] = obj["test"]
        return out
    return {"train": obj}


def _read_source(path: Path | None, spec: UserDatasetSpec, raw: str) -> dict[str, Iterator[tuple[Any, Any, str]]]:
    """{split: rows} for one input (a file gives only "train"-like rows)."""
    if path is None or path.is_dir():
        return {s: _rows_hf(d, f"{raw}[{s}]", spec) for s, d in _load_hf(path, spec).items()}
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return {"train": _rows_csv(path, spec)}
    if suffix in (".jsonl", ".json", ".ndjson"):
        return {"train": _rows_jsonl(path, spec)}
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .jsonl or a datasets folder")


def _to_pairs(rows: Iterator[tuple[Any, Any, str]], spec: UserDatasetSpec) -> list[tuple[str, int]]:
    pairs = []
    for text, label, where in rows:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: empty or non-text value in column {spec.text_column!r}")
        pairs.append((text, _label_to_index(label, spec, where)))
    return pairs


def _label_to_index(label: Any, spec: UserDatasetSpec, where: str) -> int:
    if isinstance(label, bool):
        label = str(label)
    if isinstance(label, int) or (isinstance(label, str) and label.strip().isdigit() and label not in spec.labels):
        idx = int(label)
        if 0 <= idx < len(spec.labels):
            return idx
    elif isinstance(label, str) and label.strip() in spec.labels:
        return spec.labels.index(label.strip())
    raise DataError(f"{where}: unknown label {label!r}; allowed labels: {', '.join(spec.labels)} "
                    f"(or their indices 0..{len(spec.labels) - 1})")


def prepare_user(spec: UserDatasetSpec, data_root: str | Path, split_seed: int) -> PreparedDataset:
    """Read, validate, dedup and split a user dataset (see the module docstring)."""
    root = Path(data_root)
    main_path = _resolve(spec.path, root)
    if main_path is None and not _is_hub_name(spec.path):
        raise DataError(missing_message(spec.name, [Path(spec.path)]))
    sources = _read_source(main_path, spec, spec.path)
    for split, value in (("validation", spec.validation_path), ("test", spec.test_path)):
        if value is not None:
            path = _resolve(value, root)
            if path is None:
                raise DataError(f"user dataset {spec.name!r}: {split} file {value!r} not found")
            sources[split] = next(iter(_read_source(path, spec, value).values()))
    drops = Drops()
    given = {s: to_split(dedup(_to_pairs(rows, spec), drops, s)) for s, rows in sources.items()}
    missing = [s for s in _SPLITS if s not in given]
    if missing:
        given.update(_cut(given["train"], ["train", *missing], spec, split_seed))
    return PreparedDataset(spec.name, spec.labels, given["train"], given["validation"], given["test"], drops.as_dict())


def _cut(full: Split, names: list[str], spec: UserDatasetSpec, split_seed: int) -> dict[str, Split]:
    """Cut `full` stratified into `names` by the spec's fractions, renormalised."""
    fractions = [spec.split_fractions[_SPLITS.index(s)] for s in names]
    total = sum(fractions)
    if total <= 0:
        raise DataError(f"user dataset {spec.name!r}: split_fractions give no share to {names}")
    sizes = split_sizes(len(full), [f / total for f in fractions])
    parts = stratified_split(full.labels, sizes, split_seed)
    return {s: full.subset(p) for s, p in zip(names, parts)}
