"""YAML sweep specs -> frozen, validated dataclasses, before Ray or any compute starts.

Unknown keys, wrong types, unknown method or dataset names, impossible values and missing
data files are refused with an error naming the key path (e.g. `train.lr`) or the file, and
saying how to fix it. Past this module there are no raw dicts (docs/contributing.md, Configuration).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from orchestrator.search import SearchSpec
from trainables.data import DATASETS, DataError, UserDatasetSpec, check_files
from trainables.llm.generate import local_folder_problem
from trainables.llm.methods import OPTIONS as LLM_OPTIONS, LLMMethodConfig
from trainables.methods.registry import METHODS, DistillConfig, MethodConfig, MixupConfig, get_method, list_methods
from trainables.methods.synonyms import wordnet_problem
from trainables.models import PACKAGED_MINILM
from trainables.stage import OODConfig
from trainables.train import TrainConfig


class SpecError(ValueError):
    """A spec that cannot run; the message names the file, the key and the fix."""


# Table 7 and section 4.4: per-dataset batch size, learning rate and OOD fine-tuning batch size.
PAPER_DEFAULTS = {
    "goemotions": {"train": {"batch_size": 64, "lr": 2.5e-5}, "ood": {"batch_size": 8}},
    "empathetic_dialogues": {"train": {"batch_size": 64, "lr": 5e-5}, "ood": {"batch_size": 16}},
    "isear": {"train": {"batch_size": 32, "lr": 2.5e-5}, "ood": {"batch_size": 8}},
}


@dataclass(frozen=True)
class DataSettings:
    split_seed: int = 13  # seeds the validation/test cuts of datasets without them, the same for every trial seed
    max_train: int | None = None  # stratified subsample of the ID training set (quickstart)
    max_eval: int | None = None  # cap on each evaluation split


@dataclass(frozen=True)
class Resources:
    """Per trial: CPUs and a whole or fractional GPU (0.25 lets four trials share a card)."""

    cpus_per_trial: float = 1.0  # CPUs Ray reserves for each trial
    gpus_per_trial: float = 0.0  # GPUs (or a fraction of one) Ray reserves for each trial
    max_concurrent_trials: int | None = None  # at most this many trials at once; None: as many as the resources allow
    max_failures: int = 2  # a trial whose worker dies restarts at its last finished generation
    placement_strategy: str = "PACK"  # PACK keeps a trial on one node; SPREAD puts its tasks beside it
    stage_wait_hours: float = 24.0  # the longest a trial waits for a stage another trial is training
    gpus_per_llm_trial: float = 1.0  # an 8-9B LLM in bf16 takes most of a card: a whole GPU per LLM trial


@dataclass(frozen=True)
class DatasetEntry:
    """One ID dataset of the sweep, with its OOD partner and its own training settings."""

    name: str
    source: str | UserDatasetSpec
    ood: str | UserDatasetSpec | None
    train: TrainConfig
    ood_finetune: OODConfig | None

    @property
    def sources(self) -> tuple[str | UserDatasetSpec, ...]:
        """The data this entry reads: its ID dataset, then its OOD partner if it has one."""
        return tuple(s for s in (self.source, self.ood) if s is not None)


@dataclass(frozen=True)
class SweepSpec:
    name: str
    seeds: tuple[int, ...]
    datasets: tuple[DatasetEntry, ...]
    methods: tuple[MethodConfig | LLMMethodConfig, ...]
    model: str
    max_length: int
    generations: int
    data: DataSettings
    resources: Resources
    n_bins: int
    data_root: str
    device: str = "auto"
    # (dataset, method) pairs whose every generation keeps its weights, so `emocal export` finds
    # them at whichever generation is reported; never in a stage key (keeping changes no number)
    export: tuple[tuple[str, str], ...] = ()
    source_path: str = ""
    search: SearchSpec | None = None  # the `search:` block: tune the one method's options (orchestrator/search.py)
    raw: dict = field(default_factory=dict, compare=False)  # the YAML as read, for the resume diff


# Dataset and method names become folder names, MLflow filter strings and the trial key
# "<dataset>-<method>-seed<n>" (orchestrator/plan.py): without "-" in names the key splits back
# into its parts one way only; without quotes, slashes or spaces no name can escape a filter or
# a folder.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,63}")

_TOP_KEYS = {"name", "seeds", "datasets", "methods", "model", "max_length", "generations", "data",
             "train", "ood", "resources", "calibration", "device", "export", "search"}


def _fail(where: str, msg: str) -> typing.NoReturn:
    raise SpecError(f"{where}: {msg}")


def _check_type(value, hint, where: str):
    """Coerce/verify a YAML scalar or list against a dataclass field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except SpecError as exc:
                errors.append(str(exc))
        _fail(where, f"{value!r} is not a valid value ({'; '.join(errors)})")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            _fail(where, f"expected a list, got {value!r}")
        inner = typing.get_args(hint)[0]
        return tuple(_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            _fail(where, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(where, f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(where, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            _fail(where, f"expected a string, got {value!r}")
        return value
    return value


def build(cls, values: dict | None, where: str, **fixed):
    """A frozen dataclass from a YAML mapping; unknown keys and wrong types name their path."""
    values = values or {}
    if not isinstance(values, dict):
        _fail(where, f"expected a mapping of settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)} - set(fixed)
    kwargs = dict(fixed)
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
            _fail(f"{where}.{key}" if where else key, f"unknown key{hint}")
        kwargs[key] = _check_type(value, hints[key], f"{where}.{key}" if where else key)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        _fail(where or cls.__name__, str(exc))


def _check_name(value, where: str, what: str) -> str:
    """A dataset or method name, refused unless it is safe in folders, filters and trial keys."""
    name = _check_type(value, str, where)
    if not _NAME.fullmatch(name):
        safe = re.sub(r"[^A-Za-z0-9_.]", "_", name).lstrip("._")[:64] or "my_name"
        _fail(where, f"{name!r} is not a valid {what} name: use 1-64 letters, digits, _ and ., starting with "
                     f"a letter or digit (no '-': trial keys are <dataset>-<method>-seed<n>), e.g. {safe!r}")
    return name


def _require_unique(names: list[str], where: str, what: str) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        _fail(where, f"a {what} name is listed twice: {twice}; give each entry its own `name` "
                     "(trial keys, MLflow runs and folders are named after it)")


def _merge(*layers: dict | None) -> dict:
    out: dict = {}
    for layer in layers:
        out.update(layer or {})
    return out


_METHOD_KEYS = ("name", "base", "teacher", "distill", "post_hoc_ts", "report_generation", "description", "model",
                "train")


def _train_overrides(inherited: tuple[tuple[str, object], ...], values, where: str) -> tuple[tuple[str, object], ...]:
    """A method's own training settings: its base preset's (e.g. electra_lcl's batch size 10, 5
    epochs) with the spec entry's `train` on top, checked as `train` settings are, kept as sorted
    (field, value) pairs."""
    if not isinstance(values or {}, dict):
        _fail(where, f"expected a mapping of training settings (e.g. {{epochs: 5, batch_size: 10}}), got {values!r}")
    merged = {**dict(inherited), **(values or {})}
    checked = build(TrainConfig, merged, where)
    return tuple((k, getattr(checked, k)) for k in sorted(merged))


def _known_methods() -> str:
    return ", ".join(list_methods(kind=None))


def _llm_method(entry, base: LLMMethodConfig, where: str) -> LLMMethodConfig:
    """An LLM row: a preset by name, or a mapping with `base` (a preset) and overrides."""
    if isinstance(entry, str):
        return base
    unknown = set(entry) - {"name", "base", "description", *LLM_OPTIONS}
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}; an LLM method is name, base, description, "
                     f"{', '.join(LLM_OPTIONS)}")
    changes = {k: _check_type(entry[k], typing.get_type_hints(LLMMethodConfig)[k], f"{where}.{k}")
               for k in LLM_OPTIONS if k in entry}
    if "model" in changes:
        changes["model"] = _model(changes["model"], f"{where}.model")
        if Path(changes["model"]).is_dir() and (problem := local_folder_problem(changes["model"])):
            _fail(f"{where}.model", problem)
    return dataclasses.replace(base, name=entry.get("name", base.name),
                               description=entry.get("description", f"custom ({base.name})"), **changes)


def _method(entry, i: int, generations: int) -> MethodConfig | LLMMethodConfig:
    """A spec's method entry: a preset's name, or a mapping (a `base` preset, or a name, with
    overrides), parsed as its preset's kind says (a mapping without a known base is a chain)."""
    where = f"methods[{i}]"
    if isinstance(entry, str):
        if entry not in METHODS:
            _fail(where, f"unknown method {entry!r}; known methods: {_known_methods()}")
        base = METHODS[entry]
    elif isinstance(entry, dict):
        base = METHODS.get(entry.get("base", entry.get("name")))
        if "base" in entry and base is None:
            _fail(f"{where}.base", f"unknown method {entry['base']!r}; known methods: {_known_methods()}")
    else:
        _fail(where, f"expected a method name ({_known_methods()}) or a mapping")
    if base is not None and base.kind == "llm":
        method = _llm_method(entry, base, where)
    else:
        method = _chain_method(entry, base if isinstance(entry, dict) and "base" in entry else None, where)
    _check_name(method.name, f"{where}.name" if isinstance(entry, dict) else where, "method")
    if method.kind == "chain":
        method = method.with_default_generations(generations)
    try:
        method.validate()
    except ValueError as exc:
        _fail(where, str(exc))
    return method


def _chain_method(entry, base: MethodConfig | None, where: str) -> MethodConfig:
    """A trained row: a preset by name, or a mapping of options over a `base` preset (or none)."""
    if isinstance(entry, str):
        return get_method(entry)
    entry = dict(entry)
    unknown = set(entry) - set(_METHOD_KEYS)
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}; a method is {', '.join(_METHOD_KEYS)}")
    if "name" not in entry:
        _fail(where, "a custom method needs a name")
    base = base or MethodConfig(name="", description="")
    teacher = build(MixupConfig, _merge(dataclasses.asdict(base.teacher), entry.get("teacher")), f"{where}.teacher")
    distill = build(DistillConfig, _merge(dataclasses.asdict(base.distill), entry.get("distill")), f"{where}.distill")
    return dataclasses.replace(
        base, name=entry["name"], description=entry.get("description", f"custom ({entry.get('base', 'from options')})"),
        teacher=teacher, distill=distill, post_hoc_ts=entry.get("post_hoc_ts", base.post_hoc_ts),
        report_generation=entry.get("report_generation", base.report_generation),
        model=_model(_check_type(entry["model"], str, f"{where}.model"), f"{where}.model")
        if "model" in entry else base.model,
        train=_train_overrides(base.train, entry.get("train"), f"{where}.train"))


def _dataset_source(value, where: str, default_name: str = "") -> str | UserDatasetSpec:
    if isinstance(value, str):
        if value not in DATASETS:
            _fail(where, f"unknown dataset {value!r}; built-in: {', '.join(sorted(DATASETS))}, "
                         "or give a mapping with path, text_column, label_column, labels")
        return value
    if isinstance(value, dict):
        source = build(UserDatasetSpec, {"name": default_name, **value}, where)
        _check_name(source.name, f"{where}.name", "dataset")  # it also names the dataset's cache folder
        return source
    _fail(where, f"expected a dataset name or a mapping, got {value!r}")


def _dataset(entry, i: int, train_top: dict, ood_top: dict) -> DatasetEntry:
    where = f"datasets[{i}]"
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or "name" not in entry:
        _fail(where, "expected a dataset name or a mapping with at least `name`")
    unknown = set(entry) - {"name", "source", "ood", "train", "ood_finetune"}
    if unknown:
        _fail(where, f"unknown key(s) {sorted(unknown)}; known: name, source, ood, train, ood_finetune")
    name = _check_name(entry["name"], f"{where}.name", "dataset")
    source = _dataset_source(entry.get("source", name), f"{where}.source" if "source" in entry else f"{where}.name", name)
    if "ood" in entry:
        ood = None if entry["ood"] is None else _dataset_source(entry["ood"], f"{where}.ood", f"{name}_ood")
    else:
        ood = DATASETS[source].partner if isinstance(source, str) else source.partner
    defaults = PAPER_DEFAULTS.get(source if isinstance(source, str) else "", {})
    train = build(TrainConfig, _merge(defaults.get("train"), train_top, entry.get("train")), f"{where}.train")
    try:
        train.validate()
    except ValueError as exc:
        _fail(f"{where}.train", str(exc))
    ood_cfg = None
    if ood is not None and entry.get("ood_finetune", True) is not False:
        ood_cfg = build(OODConfig, _merge(defaults.get("ood"), ood_top, entry.get("ood_finetune")), f"{where}.ood_finetune")
        for p in ood_cfg.percents:
            if not 0 < p <= 100:
                _fail(f"{where}.ood_finetune.percents", f"{p} is not a percentage in (0, 100]")
    return DatasetEntry(name=name, source=source, ood=ood, train=train, ood_finetune=ood_cfg)


def parse_spec(raw: dict, *, source_path: str = "<spec>", data_root: str | None = None, check_data: bool = True) -> SweepSpec:
    """Validate a spec mapping (as read from YAML) into a SweepSpec."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source_path}: the spec must be a YAML mapping")
    try:
        return _parse(raw, source_path, data_root, check_data)
    except SpecError as exc:
        raise SpecError(f"{source_path}: {exc}") from None


def _parse(raw: dict, source_path: str, data_root: str | None, check_data: bool) -> SweepSpec:
    unknown = set(raw) - _TOP_KEYS
    for key in sorted(unknown):
        close = difflib.get_close_matches(key, sorted(_TOP_KEYS), n=1)
        _fail(key, "unknown key" + (f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(_TOP_KEYS))}"))
    for key in ("name", "seeds", "datasets", "methods"):
        if key not in raw:
            _fail(key, "missing; a spec needs name, seeds, datasets and methods")
    name = _check_type(raw["name"], str, "name")
    if not name.replace("-", "").replace("_", "").isalnum():
        _fail("name", f"{name!r}: use letters, digits, - and _ only (it names the MLflow experiment and the run folder)")
    seeds = _check_type(raw["seeds"], tuple[int, ...], "seeds")
    if not seeds or len(set(seeds)) != len(seeds):
        _fail("seeds", "give at least one seed, each once")
    generations = _check_type(raw.get("generations", 4), int, "generations")
    if not 1 <= generations <= 10:
        _fail("generations", f"{generations} is out of range 1..10 (the paper uses 4)")
    if not isinstance(raw["methods"], list) or not raw["methods"]:
        _fail("methods", f"give a list of methods: {_known_methods()}")
    methods = tuple(_method(m, i, generations) for i, m in enumerate(raw["methods"]))
    _require_unique([m.name for m in methods], "methods", "method")
    if not isinstance(raw["datasets"], list) or not raw["datasets"]:
        _fail("datasets", f"give a list of datasets: {', '.join(sorted(k for k, v in DATASETS.items() if v.role == 'id'))}")
    train_top = raw.get("train") or {}
    ood_top = raw.get("ood") or {}
    for key, block in (("train", train_top), ("ood", ood_top)):
        if not isinstance(block, dict):
            _fail(key, "expected a mapping of settings")
    datasets = tuple(_dataset(d, i, train_top, ood_top) for i, d in enumerate(raw["datasets"]))
    _require_unique([d.name for d in datasets], "datasets", "dataset")
    from orchestrator.kinds import kind_of  # it plans what this module parses

    for i, method in enumerate(methods):  # what a method asks of the seeds and datasets, as its kind says
        kind_of(method).check(method, f"methods[{i}]", seeds, datasets)
    calib = raw.get("calibration") or {}
    if set(calib) - {"n_bins"}:
        _fail("calibration", f"unknown key(s) {sorted(set(calib) - {'n_bins'})}; known: n_bins")
    n_bins = _check_type(calib.get("n_bins", 10), int, "calibration.n_bins")
    if n_bins < 1:
        _fail("calibration.n_bins", "must be >= 1")
    resources = build(Resources, raw.get("resources"), "resources")
    if resources.cpus_per_trial <= 0.01 or resources.gpus_per_trial < 0 or resources.gpus_per_llm_trial < 0:
        _fail("resources", "cpus_per_trial must be > 0.01, gpus_per_trial and gpus_per_llm_trial >= 0")
    if not resources.stage_wait_hours > 0:
        _fail("resources.stage_wait_hours", "must be > 0 (hours a trial waits for a stage another trial trains)")
    if resources.placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
        _fail("resources.placement_strategy", "use PACK, SPREAD, STRICT_PACK or STRICT_SPREAD")
    for key in ("gpus_per_trial", "gpus_per_llm_trial"):
        gpus = getattr(resources, key)
        if gpus > 1 and gpus != int(gpus):
            _fail(f"resources.{key}", "above 1 a trial takes whole GPUs (e.g. 2), below 1 a fraction (e.g. 0.25)")
    max_length = _check_type(raw.get("max_length", 128), int, "max_length")
    if not 8 <= max_length <= 4096:
        _fail("max_length", f"{max_length} is out of range 8..4096")
    export = _export_pairs(raw.get("export"), datasets, methods)
    search = _search(raw, methods, datasets, seeds) if "search" in raw else None
    root = data_root or ""
    spec = SweepSpec(
        name=name, seeds=seeds, datasets=datasets, methods=methods,
        model=_model(_check_type(raw.get("model", PACKAGED_MINILM), str, "model")), max_length=max_length,
        generations=generations, data=build(DataSettings, raw.get("data"), "data"), resources=resources,
        n_bins=n_bins, data_root=root, device=_check_type(raw.get("device", "auto"), str, "device"),
        export=export, source_path=source_path, search=search, raw=raw,
    )
    if check_data:
        check_spec_data(spec)
    return spec


def _export_pairs(value, datasets: tuple[DatasetEntry, ...], methods: tuple) -> tuple[tuple[str, str], ...]:
    """`export:`, a list of {dataset, method} mappings, each naming a dataset and a chain method of the spec."""
    if value is None:
        return ()
    if not isinstance(value, list):
        _fail("export", "expected a list of mappings such as {dataset: isear, method: csd}")
    known_d = [d.name for d in datasets]
    known_m = [m.name for m in methods if isinstance(m, MethodConfig)]  # an LLM row trains no weights
    pairs = []
    for i, entry in enumerate(value):
        where = f"export[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"dataset", "method"}:
            _fail(where, f"expected a mapping with exactly the keys dataset and method, got {entry!r}")
        for key, known in (("dataset", known_d), ("method", known_m)):
            name = _check_type(entry[key], str, f"{where}.{key}")
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                _fail(f"{where}.{key}", f"{name!r} is not a {key} of this spec with weights to keep"
                      + (f"; did you mean {close[0]!r}?" if close else f"; the spec's: {', '.join(known)}"))
        pairs.append((entry["dataset"], entry["method"]))
    if len(set(pairs)) != len(pairs):
        _fail("export", "a (dataset, method) pair is listed twice; list each once")
    return tuple(pairs)


def _search(raw: dict, methods: tuple, datasets: tuple[DatasetEntry, ...], seeds: tuple[int, ...]):
    """The `search:` block (orchestrator/search.py): one method tuned on one dataset."""
    from orchestrator.search import SearchError, parse_search

    if len(datasets) != 1:
        _fail("datasets", f"a search tunes a method on one dataset; the spec lists {len(datasets)}: "
                          "give one spec per dataset")
    if raw.get("export"):
        _fail("export", "a search chooses its configuration as it runs, so it has nothing to list yet; give "
                        "export: in a sweep of the chosen configuration (the search writes one: "
                        "<runs>/<name>_confirm/spec.yaml)")
    try:
        return parse_search(raw["search"], methods, datasets[0].train, seeds[0])
    except SearchError as exc:
        raise SpecError(str(exc)) from None


def _model(name: str, where: str = "model") -> str:
    """A local model folder as an absolute path (trials run in folders of their own, on other
    nodes); a hub name or the packaged MiniLM as given. The sweep's `model` and a method's own
    (`methods[i].model`) mean the same."""
    if name.startswith("packaged:"):
        return name
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if name.startswith(("/", "./", "../", "~")):
        _fail(where, f"{name} is not a folder; give a local model folder (one from_pretrained loads) or a hub name")
    return name


def wordnet_methods(spec: SweepSpec) -> list[int]:
    """The indices of the methods whose stages read WordNet (an LCL row's synonym copies)."""
    return [i for i, m in enumerate(spec.methods)
            if m.kind == "chain" and m.teacher.kind == "lcl" and m.teacher.lcl_second_view == "synonym"]


def check_spec_data(spec: SweepSpec) -> None:
    """Every data file the sweep reads exists, checked before Ray starts: the datasets', and
    WordNet for an LCL row's synonym copies (trainables/methods/synonyms.py)."""
    for i in wordnet_methods(spec)[:1]:
        if problem := wordnet_problem():
            _fail(f"methods[{i}] ({spec.methods[i].name}): teacher.lcl_second_view synonym", problem)
    for i, entry in enumerate(spec.datasets):
        for role, source in (("name", entry.source), ("ood", entry.ood)):
            if source is None:
                continue
            try:
                check_files(source, spec.data_root)
            except DataError as exc:
                _fail(f"datasets[{i}].{role}", str(exc))


def load_spec(path: str | Path, *, data_root: str | None = None, check_data: bool = True) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file; the specs shipped are in specs/ (e.g. specs/quickstart.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}:{line} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_spec(raw, source_path=str(path), data_root=data_root, check_data=check_data)
