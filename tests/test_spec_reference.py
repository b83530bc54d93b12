"""docs/spec.md is what orchestrator/spec_reference.py prints from the code, every key has a meaning, and
every range it documents is the one the spec parser enforces: a value just outside is refused naming
the key, a value at the edge is taken."""
from __future__ import annotations

import copy
import dataclasses
import re

import pytest

from orchestrator import spec_reference as ref
from orchestrator.spec import SpecError, parse_spec
from trainables.data import DataError


def test_docs_spec_md_is_what_the_generator_prints():
    assert ref.DOC.read_text() == ref.render(), f"docs/spec.md is stale; regenerate it: {ref.COMMAND}"


def test_the_check_flag_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "spec.md"
    stale.write_text(ref.render() + "| `a_key_the_code_no_longer_has` | int | `1` |  | gone |\n")
    monkeypatch.setattr(ref, "DOC", stale)
    assert ref.main(["--check"]) == 1 and ref.COMMAND in capsys.readouterr().err
    stale.write_text(ref.render())
    assert ref.main(["--check"]) == 0


@pytest.mark.parametrize("section", ref.SECTIONS, ids=lambda s: s.id)
def test_every_key_and_field_has_a_meaning(section):
    """A new dataclass field without a docstring entry or a comment fails here, naming it."""
    missing = [name for name, key in ref.section_keys(section).items() if not key.meaning.strip()]
    if section.cls is not None:
        docs = ref.field_docs(section.cls)
        missing += [f.name for f in dataclasses.fields(section.cls) if f.name not in docs]
    assert not missing, f"{section.path or 'top level'}: no description for {sorted(set(missing))}; add a field " \
                        "comment (or an Attributes: entry) in the code, or a Key in orchestrator/spec_reference.py"


def test_field_docs_reads_docstrings_trailing_and_leading_comments():
    @dataclasses.dataclass
    class Example:
        """An example.

        Attributes:
            a: from the docstring,
                over two lines.
        """

        a: int = 1  # not this one: the docstring wins
        b: int = 2  # trailing
        # leading, line one
        # line two
        c: int = 3
        d: int = 4

    assert ref.field_docs(Example) == {"a": "from the docstring, over two lines", "b": "trailing",
                                       "c": "leading, line one line two"}


@pytest.mark.parametrize("section_id", ["top", "method", "llm"])
def test_the_documented_keys_are_those_the_parser_takes(section_id):
    assert set(ref.section_keys(ref.section(section_id))) == ref.yaml_keys(section_id)


def test_the_documented_dataset_keys_are_those_the_parser_takes():
    with pytest.raises(SpecError, match="unknown key") as err:
        parse_spec(probe_spec("dataset", "no_such_key", 1), check_data=False)
    known = re.search(r"known: (.*)$", str(err.value)).group(1).split(", ")
    assert set(ref.section_keys(ref.section("dataset"))) == set(known)


def test_every_range_names_a_documented_key():
    for section_id, key in ref.RANGES:
        assert key in ref.section_keys(ref.section(section_id)), (section_id, key)


BASE = {"name": "probe", "seeds": [0, 1, 2], "datasets": ["isear"], "methods": ["ce"]}
USER_SOURCE = {"path": "mine.csv", "labels": ["joy", "anger"]}


def probe_spec(section_id: str, key: str, value) -> dict:
    """The smallest spec with `value` at `key` of the section, everything else valid."""
    raw = copy.deepcopy(BASE)
    if section_id == "top":
        raw[key] = value
    elif section_id in ("data", "train", "ood", "resources", "calibration"):
        raw[section_id] = {key: value}
    elif section_id == "dataset":
        raw["datasets"] = [{"name": "isear", key: value} if key != "name" else {"name": value, "source": USER_SOURCE}]
    elif section_id == "source":
        raw["datasets"] = [{"name": "mine", "source": {**USER_SOURCE, key: value}}]
    elif section_id == "method":
        raw["methods"] = [{"name": "probe_method", "base": "sim_mixup_csd", key: value}]
    elif section_id in ("teacher", "distill"):
        raw["methods"] = [{"name": "probe_method", "base": "csd", section_id: {key: value}}]
    elif section_id in ("objective", "scheduler"):  # a search over a method with students
        raw["methods"] = ["sim_mixup_csd"]
        raw["search"] = {"params": {"teacher.alpha": {"uniform": [1.0, 2.0]}}, section_id: {key: value}}
    elif section_id == "llm":  # prompts and examples_from only vary on a few-shot row; the rest on a zero-shot one
        few_shot = key in ("prompts", "examples_from")
        raw["methods"] = [{"name": "probe_llm", "base": "llama3_8b_fs" if few_shot else "llama3_8b_zs", key: value}]
    else:
        raise AssertionError(f"no probe for section {section_id}")
    return raw


PROBES = [(s, k, v, ok) for (s, k), allowed in ref.RANGES.items()
          for ok, values in ((False, allowed.reject), (True, allowed.accept)) for v in values]


@pytest.mark.parametrize("section_id, key, value, ok", PROBES,
                         ids=[f"{s}.{k}={v!r}:{'ok' if ok else 'refused'}" for s, k, v, ok in PROBES])
def test_the_validator_enforces_each_documented_range(section_id, key, value, ok):
    raw = probe_spec(section_id, key, value)
    if ok:
        parse_spec(raw, check_data=False)
        return
    with pytest.raises((SpecError, DataError)) as err:
        parse_spec(raw, check_data=False)
    assert key in str(err.value), f"the error does not name {key}: {err.value}"


def test_a_probe_spec_without_a_bad_value_parses():
    """The probes' base is valid, so a refused probe is refused for its value."""
    parse_spec(copy.deepcopy(BASE), check_data=False)
    parse_spec(probe_spec("source", "text_column", "text"), check_data=False)
    parse_spec(probe_spec("llm", "batch_size", 16), check_data=False)


def test_the_guides_example_spec_is_a_valid_spec():
    """docs/guide.md's worked example (the spec reference points to it) parses as it stands."""
    import yaml

    blocks = re.findall(r"```yaml\n(.*?)```", (ref.DOC.parent / "guide.md").read_text(), re.S)
    example = next(b for b in blocks if b.startswith("name: "))
    spec = parse_spec(yaml.safe_load(example), check_data=False)
    assert [m.name for m in spec.methods] == ["sim_mixup_csd", "sim_logits_batch", "lcl_minilm"]
