"""docs/spec.md, generated from the config dataclasses a spec becomes: every key, type, default, range, meaning.

    python -m orchestrator.spec_reference > docs/spec.md     # regenerate
    python -m orchestrator.spec_reference --check            # exit 1 when docs/spec.md is stale

A key's meaning is its field's docstring entry (`Attributes:`) or its field comment, read from the
source; keys that are no dataclass field (the top level, a dataset entry) are described in `KEYS`
below. Types and defaults come from the dataclasses, the top level's defaults from parsing a minimal
spec. The allowed values live in `RANGES`, each with probes that tests/test_spec_reference.py feeds
to the validator (orchestrator/spec.py), so a documented range that the validator does not enforce
fails the test, as does a field without a description or a docs/spec.md that differs from this output.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import re
import sys
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from orchestrator import spec as spec_module
from orchestrator.search import VAL_METRICS, Objective, SchedulerSpec, SearchSpec, search_paths
from orchestrator.spec import PAPER_DEFAULTS, DataSettings, Resources, parse_spec
from trainables.data import DATASETS, UserDatasetSpec
from trainables.llm.methods import EXAMPLE_SOURCES, LLM_PRESETS, OPTIONS as LLM_OPTIONS, LLMMethodConfig
from trainables.methods.registry import (DISTILL_KINDS, LCL_SECOND_VIEWS, MIXUP_KINDS, PRESETS, DistillConfig,
                                         MethodConfig, MixupConfig)
from trainables.stage import OODConfig
from trainables.train import SELECT, TrainConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "spec.md"
COMMAND = "python -m orchestrator.spec_reference > docs/spec.md"


# ---- meanings read from the source -------------------------------------------------------

def field_docs(cls: type) -> dict[str, str]:
    """Each field's meaning: its `Attributes:` docstring entry, else its trailing comment, else the
    comment lines right above it. A field with none is missing from the result."""
    source = textwrap.dedent(inspect.getsource(cls))
    out = _docstring_attributes(inspect.getdoc(cls) or "")
    trailing, alone = {}, {}  # line -> comment text: after code on that line, or on a line of its own
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            own_line = not tok.line[:tok.start[1]].strip()
            (alone if own_line else trailing)[tok.start[0]] = tok.string.lstrip("#").strip()
    (node,) = ast.parse(source).body
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)) or stmt.target.id in out:
            continue
        text = trailing.get(stmt.end_lineno, "")
        if not text:  # the comment block directly above the field
            above, line = [], stmt.lineno - 1
            while line in alone:
                above.insert(0, alone[line])
                line -= 1
            text = " ".join(above)
        if text:
            out[stmt.target.id] = text
    return {name: text.rstrip(".") for name, text in out.items()}


def _docstring_attributes(doc: str) -> dict[str, str]:
    """`name: text` entries (with their indented continuation lines) of a Google-style `Attributes:`."""
    out: dict[str, str] = {}
    lines = doc.split("Attributes:", 1)[1].splitlines() if "Attributes:" in doc else []
    current = None
    for line in lines:
        m = re.match(r"^    (\w+): (.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current and line.startswith("        "):
            out[current] += " " + line.strip()
        elif line.strip():
            break
    return out


# ---- allowed values, each with probes the test gives the validator -----------------------

@dataclass(frozen=True)
class Allowed:
    """What the validator accepts for one key: the text shown, and values on either side of it.

    `reject` are values just outside the range that the spec parser must refuse (naming the key),
    `accept` values at its edge that it must take.
    """

    text: str
    reject: tuple = ()
    accept: tuple = ()


def at_least(low: int | float) -> Allowed:
    step = 1 if isinstance(low, int) else 1e-6
    return Allowed(f">= {low}", reject=(low - step,), accept=(low,))


def above(low: float) -> Allowed:
    return Allowed(f"> {low:g}", reject=(low,), accept=(low + 1e-6,))


def between(low: int, high: int) -> Allowed:
    return Allowed(f"{low}..{high}", reject=(low - 1, high + 1), accept=(low, high))


def unit_interval(low_open: bool) -> Allowed:
    """(0, 1] or [0, 1]."""
    if low_open:
        return Allowed("(0, 1]", reject=(0.0, 1.0 + 1e-6), accept=(1e-6, 1.0))
    return Allowed("[0, 1]", reject=(-1e-6, 1.0 + 1e-6), accept=(0.0, 1.0))


def one_of(*choices: str) -> Allowed:
    return Allowed(" \\| ".join(f"`{c}`" for c in choices), reject=("no_such_choice",), accept=choices)


_NAME_RULE = "1-64 letters, digits, `_`, `.`; starts with a letter or digit; no `-`"

# (section, key) -> Allowed. Sections are those of SECTIONS below.
RANGES: dict[tuple[str, str], Allowed] = {
    ("top", "name"): Allowed("letters, digits, `-`, `_`", reject=("my sweep",), accept=("my-sweep_2",)),
    ("top", "seeds"): Allowed("at least one, none twice", reject=([], [0, 0]), accept=([0],)),
    ("top", "generations"): between(1, 10),
    ("top", "max_length"): between(8, 4096),
    ("calibration", "n_bins"): at_least(1),
    ("train", "epochs"): at_least(1),
    ("train", "batch_size"): at_least(1),
    ("train", "eval_batch_size"): at_least(1),
    ("train", "lr"): above(0.0),
    ("train", "select"): one_of(*SELECT),
    ("ood", "percents"): Allowed("each in (0, 100]", reject=([0.0], [100.5]), accept=([100.0], [0.5])),
    ("resources", "cpus_per_trial"): above(0.01),
    ("resources", "gpus_per_trial"): Allowed(">= 0; above 1 a whole number", reject=(-0.25, 1.5), accept=(0.0, 0.25, 2.0)),
    ("resources", "gpus_per_llm_trial"): Allowed(">= 0; above 1 a whole number", reject=(-0.25, 1.5), accept=(0.0, 1.0, 2.0)),
    ("resources", "stage_wait_hours"): above(0.0),
    ("resources", "placement_strategy"): one_of("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"),
    ("dataset", "name"): Allowed(_NAME_RULE, reject=("my-data",), accept=("my_data.v2",)),
    ("source", "labels"): Allowed("at least one, none twice", reject=([], ["joy", "joy"]), accept=(["joy"],)),
    ("source", "split_fractions"): Allowed("3 numbers >= 0 summing to 1", reject=([0.5, 0.5, 0.5], [-0.2, 0.6, 0.6]),
                                           accept=([1.0, 0.0, 0.0], [0.8, 0.1, 0.1])),
    ("source", "role"): Allowed("`id` \\| `ood` (`ood` needs `partner`)", reject=("test",), accept=("id",)),
    ("method", "name"): Allowed(_NAME_RULE, reject=("my-method",), accept=("my_method.v2",)),
    ("method", "report_generation"): one_of("best", "last"),
    ("teacher", "kind"): one_of(*MIXUP_KINDS),
    ("teacher", "alpha"): above(0.0),
    ("teacher", "ea_fraction"): unit_interval(low_open=True),
    ("teacher", "layer"): one_of("features", "logits"),
    ("teacher", "scope"): one_of("half", "batch"),
    ("teacher", "main_weight"): unit_interval(low_open=True),
    ("teacher", "lcl_ce_weight"): unit_interval(low_open=False),
    ("teacher", "lcl_temperature"): above(0.0),
    ("teacher", "lcl_second_view"): one_of(*LCL_SECOND_VIEWS),
    ("distill", "kind"): one_of(*DISTILL_KINDS),
    ("distill", "generations"): Allowed(">= 2 with `sd` or `csd` (it counts the teacher); 1 or null with `none`",
                                        reject=(1,), accept=(2, None)),
    ("objective", "metric"): one_of(*VAL_METRICS),
    ("objective", "mode"): one_of("min", "max"),
    ("scheduler", "kind"): one_of("asha", "none"),
    ("llm", "name"): Allowed(_NAME_RULE, reject=("my-row",), accept=("my_row.v2",)),
    ("llm", "shots_per_class"): at_least(0),
    ("llm", "prompts"): Allowed(">= 1; 1 when zero-shot; at most the spec's number of seeds", reject=(0, 4), accept=(1, 3)),
    ("llm", "max_new_tokens"): at_least(1),
    ("llm", "batch_size"): at_least(1),
    ("llm", "examples_from"): one_of(*EXAMPLE_SOURCES),
}


# ---- keys that are no dataclass field ------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """A spec key the generator describes itself: a top-level key or a part of an entry."""

    type: str
    default: str
    meaning: str


def _minimal_spec():
    """The top level's defaults as the parser fills them in (no data files read)."""
    raw = {"name": "defaults", "seeds": [0], "datasets": ["isear"], "methods": ["ce"]}
    return parse_spec(raw, check_data=False)


def _top_keys() -> dict[str, Key]:
    d = _minimal_spec()
    return {
        "name": Key("string", "required", "names the MLflow experiment and the run folder (`<runs>/<name>/`)"),
        "seeds": Key("list of int", "required", "one trial per seed of each (dataset, method); seeds the model's "
                                                "initialisation and batch order, and a few-shot LLM row's examples"),
        "datasets": Key("list", "required", "the ID datasets, each a built-in name or a mapping (`datasets[i]` below)"),
        "methods": Key("list", "required", "the table rows, each a preset name or a mapping (`methods[i]` below)"),
        "model": Key("string", f"`{d.model}`", "the encoder every method fine-tunes unless it has its own: a hub "
                                               "name, a local folder, or `packaged:all-MiniLM-L6-v2` (no hub needed)"),
        "max_length": Key("int", f"`{d.max_length}`", "tokens per text; longer texts are cut"),
        "generations": Key("int", f"`{d.generations}`", "models in a distillation chain, teacher included "
                                                        "(a method's `distill.generations` overrides it)"),
        "data": Key("mapping", "", "how the datasets are prepared (`data` below)"),
        "train": Key("mapping", "", "training settings of every dataset and method (`train` below)"),
        "ood": Key("mapping", "", "OOD fine-tuning settings of every dataset (`ood` below)"),
        "resources": Key("mapping", "", "what Ray reserves per trial (`resources` below)"),
        "calibration": Key("mapping", "", "calibration settings (`calibration` below)"),
        "device": Key("string", f"`{d.device}`", "`auto` (a GPU when the trial has one, else the CPU) or a torch "
                                                 "device name such as `cpu` or `cuda`"),
        "export": Key("list of mappings", "`[]`", "`{dataset: D, method: M}` pairs whose every generation keeps its "
                                                  "weights, so `emocal export` finds them at the reported generation; "
                                                  "changes no stage key or number; `emocal plan` prints the disk cost"),
        "search": Key("mapping", "none", "search the one method's options on the one dataset instead of running "
                                         "its grid (`search` below; docs/guide.md)"),
    }


def _search_keys() -> dict[str, Key]:
    d = SearchSpec.__dataclass_fields__
    return {
        "method": Key("string", "the spec's one method", "the method whose options are searched"),
        "params": Key("mapping", "required", "spec path -> one of `{uniform: [low, high]}`, `{loguniform: [low, "
                                             "high]}`, `{randint: [low, high]}` (both included), `{choice: [...]}`; "
                                             "paths: " + ", ".join(f"`{p}`" for p in search_paths())),
        "algorithm": Key("string", f"`{d['algorithm'].default}`", "`optuna` (Optuna's TPE through Tune's "
                                                                  "OptunaSearch), `random` or `grid` (Tune's "
                                                                  "BasicVariantGenerator; grid takes choices only)"),
        "scheduler": Key("string or mapping", "`asha`", "`asha`, `none`, or a mapping (`search.scheduler` below)"),
        "num_samples": Key("int", f"`{d['num_samples'].default}` (grid: 1)", "samples drawn (grid: runs of the whole grid)"),
        "max_concurrent": Key("int", f"`{d['max_concurrent'].default}`", "samples at once (TPE learns from the "
                                                                         "finished ones)"),
        "objective": Key("mapping", "see below", "what a sample is ranked by (`search.objective` below)"),
        "seed": Key("int", "the first of `seeds`", "the searcher's random seed"),
    }


def _calibration_keys() -> dict[str, Key]:
    return {"n_bins": Key("int", f"`{_minimal_spec().n_bins}`",
                          "bins of the reported ECE and of the temperature search alike (`ece15` is always 15 bins)")}


def _dataset_keys() -> dict[str, Key]:
    return {
        "name": Key("string", "required", "the dataset's name in trial keys, MLflow tags and the report; a built-in "
                                          "name alone reads that dataset"),
        "source": Key("string or mapping", "`name`", "where the ID data comes from: a built-in dataset name or a "
                                                     "user dataset (`datasets[i].source` below)"),
        "ood": Key("string, mapping or null", "the built-in partner", "the OOD partner: a built-in name, a user "
                                                                      "dataset mapping, or null for none"),
        "train": Key("mapping", "", "this dataset's training settings, over the top-level `train` (keys of `train`)"),
        "ood_finetune": Key("mapping or false", "", "this dataset's OOD fine-tuning, over the top-level `ood` (keys "
                                                    "of `ood`); false: evaluate OOD without fine-tuning"),
    }


# ---- sections ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """One mapping of the spec: where it sits in the YAML and what its keys are."""

    id: str
    path: str
    intro: str
    cls: type | None = None  # the dataclass behind it; None: keys from `keys`
    keys: typing.Callable[[], dict[str, Key]] | None = None
    extra: typing.Callable[[], dict[str, Key]] | None = None  # YAML keys that are no field (e.g. `base`)
    skip: tuple[str, ...] = ()  # fields a spec cannot set
    defaults: dict[str, str] = dataclasses.field(default_factory=dict)  # shown instead of the field's
    heading: str = ""  # instead of the path


SECTIONS: tuple[Section, ...] = (
    Section("top", "", "A spec is one YAML mapping. `name`, `seeds`, `datasets` and `methods` are required.",
            keys=_top_keys, heading="Top level"),
    Section("data", "data", "How every dataset is prepared.", cls=DataSettings),
    Section("train", "train", "Training settings (`TrainConfig`). Layered, later wins: the dataset's paper "
            "defaults (below), the top-level `train`, `datasets[i].train`, the method preset's own settings, "
            "`methods[i].train`.", cls=TrainConfig),
    Section("ood", "ood", "OOD fine-tuning (`OODConfig`, section 4.4), from every generation of a chain; "
            "`datasets[i].ood_finetune` takes the same keys over these.", cls=OODConfig),
    Section("resources", "resources", "What Ray reserves per trial and how trials are placed.", cls=Resources),
    Section("calibration", "calibration", "Calibration settings.", keys=_calibration_keys),
    Section("dataset", "datasets[i]", "A dataset entry: a built-in name (`- isear`), or a mapping with these "
            "keys. Each built-in ID dataset brings its OOD partner.", keys=_dataset_keys),
    Section("source", "datasets[i].source", "Your own data (`UserDatasetSpec`), as `datasets[i].source` or "
            "`datasets[i].ood`: CSV/TSV, JSONL, a local Hugging Face `save_to_disk` folder, or a hub name. "
            "Relative paths are looked up under the data root, then the working directory. `name` defaults to "
            "the entry's name (`<name>_ood` for an OOD partner).", cls=UserDatasetSpec,
            defaults={"name": "the entry's `name`", "labels": "required"}),
    Section("method", "methods[i]", "A method entry: a preset name (`- sim_mixup_csd`), or a mapping "
            "(`MethodConfig`): `name`, and either `base` (a preset whose options the others change) or the "
            "options themselves. A key not given keeps the base preset's value, else the default below.",
            cls=MethodConfig, defaults={"description": "`custom (<base>)`"},
            extra=lambda: {"base": Key("string", "none", "the preset this entry starts from (presets below)")}),
    Section("teacher", "methods[i].teacher", "How generation 1 is trained (`MixupConfig`).", cls=MixupConfig),
    Section("distill", "methods[i].distill", "Self-distillation over generations (`DistillConfig`).",
            cls=DistillConfig),
    Section("search", "search", "A search (orchestrator/search.py): every sample is the spec's one method with "
            "the sampled options, on the first seed; the chosen configuration is then trained on every seed "
            "(`<name>_confirm`). Every bound and choice is checked against the option's own rules before Ray "
            "starts.", keys=_search_keys),
    Section("objective", "search.objective", "The objective, on validation data only, at each sample's g* "
            "(best validation macro F1).", cls=Objective),
    Section("scheduler", "search.scheduler", "ASHA over generations (a chain is stopped at a generation "
            "boundary), or none.", cls=SchedulerSpec),
    Section("llm", "methods[i]", "An entry whose `base` (or name) is an LLM preset (`LLMMethodConfig`): an "
            "instruction-tuned LLM asked the paper's prompt, nothing trained. A key not given keeps the preset's value.",
            cls=LLMMethodConfig, skip=("paper_row",), heading="`methods[i]`: an LLM row",
            defaults={"description": "`custom (<base>)`", "model": "the preset's"},
            extra=lambda: {"base": Key("string", "none", "the LLM preset this entry starts from (presets below)")}),
)


def section(id_: str) -> Section:
    return next(s for s in SECTIONS if s.id == id_)


def section_keys(sec: Section) -> dict[str, Key]:
    """The section's YAML keys with type, default and meaning, in the order the code declares them."""
    if sec.keys is not None:
        return sec.keys()
    docs, hints = field_docs(sec.cls), typing.get_type_hints(sec.cls)
    out = {}
    for f in dataclasses.fields(sec.cls):
        if f.name in sec.skip:
            continue
        default = sec.defaults.get(f.name) or _default(f, hints[f.name])
        out[f.name] = Key(_type_name(hints[f.name]), default, docs.get(f.name, ""))
    if sec.extra is not None:
        out.update(sec.extra())
    return out


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "string"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return "mapping" if typing.get_origin(args[0]) is tuple else f"list of {_type_name(args[0])}"
        return f"list of {len(args)} {_type_name(args[0])}"
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return {int: "int", float: "number", str: "string", bool: "bool"}.get(hint, getattr(hint, "__name__", str(hint)))


def _default(f: dataclasses.Field, hint) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "see below"
    else:
        return "required"
    if value == () and _type_name(hint) == "mapping":
        return "`{}`"
    return f"`{_yaml(value)}`"


def _yaml(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return str(value)


def _cell(text: str) -> str:
    """A meaning as a table cell: YAML's `null` for Python's None, `|` escaped."""
    return re.sub(r"\bNone\b", "null", text).replace("|", "\\|")


def _allowed(sec: Section, name: str) -> str:
    rule = RANGES.get((sec.id, name))
    if rule is not None:
        return rule.text
    if sec.cls is not None:
        hint = typing.get_type_hints(sec.cls).get(name)
        if typing.get_origin(hint) is typing.Literal:
            return " \\| ".join(f"`{c}`" for c in typing.get_args(hint))
    return ""


# ---- the document --------------------------------------------------------------------------

def render() -> str:
    """docs/spec.md as the code defines it now."""
    out = [
        "# Spec reference",
        "",
        f"<!-- generated by `{COMMAND}` from the config dataclasses; do not edit by hand. -->",
        "",
        "Every key a sweep spec (YAML) may hold, with its type, default, allowed values and meaning. A spec is",
        "read with `yaml.safe_load` and checked before anything starts: an unknown key, a wrong type, an unknown",
        "method or dataset, a value outside the range below or a missing data file is an error that names the",
        "key or the file and the fix. An empty *allowed* cell means the type is the only check. The user guide",
        "([guide.md](guide.md)) has a worked example; `emocal plan SPEC` prints what a spec will run.",
        "",
    ]
    for sec in SECTIONS:
        out += [f"## {sec.heading or f'`{sec.path}`'}", "", sec.intro, "",
                "| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for name, key in section_keys(sec).items():
            out.append(f"| `{name}` | {key.type} | {key.default} | {_allowed(sec, name)} | {_cell(key.meaning)} |")
        out.append("")
        out += _after(sec.id)
    return "\n".join(out).rstrip() + "\n"


def _after(section_id: str) -> list[str]:
    """Tables that follow a section: the registries its keys name."""
    if section_id == "train":
        rows = [f"| `{name}` | {_yaml(v['train'].get('batch_size'))} | {_yaml(v['train'].get('lr'))} | "
                f"{_yaml(v['ood'].get('batch_size'))} |" for name, v in PAPER_DEFAULTS.items()]
        return ["The paper's settings per dataset (Table 7, section 4.4), under everything a spec sets:", "",
                "| dataset | `train.batch_size` | `train.lr` | `ood.batch_size` |", "|---|---|---|---|", *rows, ""]
    if section_id == "dataset":
        rows = [f"| `{d.name}` | {d.role} | `{d.partner}` | {', '.join(f'`{f}`' for f in d.files)} |"
                for d in DATASETS.values()]
        return ["Built-in datasets: each is a folder `<data root>/<name>/` holding its published files.", "",
                "| name | role | partner | files |", "|---|---|---|---|", *rows, ""]
    if section_id == "distill":
        rows = []
        for m in PRESETS.values():
            gens = m.distill.generations or ("1" if m.distill.kind == "none" else "`generations`")
            own = ", ".join(f"{k} {_yaml(v)}" for k, v in m.train)
            rows.append(f"| `{m.name}` | {m.teacher.kind} | {m.distill.kind} | {gens} | "
                        f"{'yes' if m.post_hoc_ts else ''} | {f'`{m.model}`' if m.model else ''} | {own} | "
                        f"{_cell(m.description)} |")
        return ["Method presets (`trainables/methods/registry.py`):", "",
                "| preset | teacher | distill | generations | post-hoc TS | own model | own train | description |",
                "|---|---|---|---|---|---|---|---|", *rows, ""]
    if section_id == "llm":
        rows = [f"| `{m.name}` | `{m.model}` | {m.shots_per_class} | {m.prompts} | {m.paper_row} | {_cell(m.description)} |"
                for m in LLM_PRESETS.values()]
        return ["LLM presets (`trainables/llm/methods.py`):", "",
                "| preset | model | shots per class | prompts | paper row | description |", "|---|---|---|---|---|---|",
                *rows, ""]
    return []


def yaml_keys(section_id: str) -> set[str]:
    """The keys the parser accepts in a section, from its own constants where it has them."""
    return {
        "top": set(spec_module._TOP_KEYS),
        "method": set(spec_module._METHOD_KEYS),
        "llm": {"name", "base", "description", *LLM_OPTIONS},
    }.get(section_id, set())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.spec_reference", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help=f"exit 1 when {DOC} differs from what this prints")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOC.is_file() or DOC.read_text() != text:
            print(f"{DOC} is out of date; regenerate it: {COMMAND}", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
