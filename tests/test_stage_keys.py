"""Stage keys name everything that changes a stage's numbers, and nothing else.

A stage is found again by its key (the stage store, sharing between trials, MLflow's plan
fingerprint), so a setting that changes results but not the key would hand out stale numbers.
Two guards: every config field reachable from StageSpec must change the key (unless
KEY_EXEMPT says it is only where a stage runs or lies), and the whole config schema is pinned
to STAGE_FORMAT_VERSION, so adding or changing a field fails here until whoever does it
decides whether what a stage computes changed (then bumps the version) and re-pins.
"""
from __future__ import annotations

import dataclasses
import hashlib
import typing

import pytest

from trainables.llm.stage import LLM_KEY_EXEMPT, LLM_STAGE_FORMAT_VERSION, LLMSettings, LLMStageSpec
from trainables.methods.registry import DistillConfig, MixupConfig
from trainables.stage import KEY_EXEMPT, STAGE_FORMAT_VERSION, DataConfig, OODConfig, StageSpec
from trainables.train import TrainConfig

# STAGE_FORMAT_VERSION -> sha256 of the config schema and KEY_EXEMPT it was pinned with
PINNED_SCHEMA = {2: "661d796c72e3a2d5", 3: "b6267db23e0835d5", 4: "4b6867f4f134ee47"}

DATA = DataConfig(dataset="isear", ood_dataset="emotion_stimulus", data_root="/data", model="m", fingerprint="f")
TEACHER = StageSpec(generation=1, seed=0, data=DATA, train=TrainConfig(), teacher=MixupConfig("sim"),
                    distill=DistillConfig(), data_map="g1-map", ood=OODConfig())
STUDENT = dataclasses.replace(TEACHER, generation=2, teacher=MixupConfig(), parent="g1-parent",
                              distill=DistillConfig("csd", generations=4))


def leaf_paths(obj, prefix: str = "") -> list[str]:
    paths = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            paths += leaf_paths(value, f"{prefix}{f.name}.")
        else:
            paths.append(prefix + f.name)
    return paths


def changed(value, hint):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, tuple):
        return value[:-1] if value else (1,)
    if value is None:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return {int: 7, float: 0.3, str: "set"}[args[0]]
    raise AssertionError(f"no way to change {value!r}; teach `changed` this type")


def with_field(spec, path: str):
    """`spec` with the leaf at dotted `path` changed."""
    def go(obj, names):
        hints = typing.get_type_hints(type(obj))
        head, *rest = names
        value = getattr(obj, head)
        new = go(value, rest) if rest else changed(value, hints[head])
        return dataclasses.replace(obj, **{head: new})
    return go(spec, path.split("."))


@pytest.mark.parametrize("spec", [TEACHER, STUDENT], ids=["teacher", "student"])
def test_every_field_that_changes_results_changes_the_key(spec):
    ignored = "distill." if spec.generation == 1 else "teacher."  # by design: see StageSpec.key
    for path in leaf_paths(spec):
        other = with_field(spec, path).key()
        if path in KEY_EXEMPT or path.startswith(ignored):
            assert other == spec.key(), f"{path} is exempt from the key but changed it"
        else:
            assert other != spec.key(), (f"{path} changes what a stage computes but not its key: stale stages "
                                         "would be reused; keep it in the key or, if it truly changes nothing, "
                                         "add it to trainables.stage.KEY_EXEMPT")


def schema_lines(cls=StageSpec, prefix: str = "") -> list[str]:
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
        nested = [a for a in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(a)]
        lines.append(f"{prefix}{f.name}: {hints[f.name]} = {default!r}")
        for sub in nested:
            lines += schema_lines(sub, f"{prefix}{f.name}.")
    return lines


def test_config_schema_is_pinned_to_the_stage_format_version():
    lines = schema_lines() + [f"key exempt: {sorted(KEY_EXEMPT)}"]
    _check_pinned(lines, PINNED_SCHEMA, STAGE_FORMAT_VERSION, "STAGE_FORMAT_VERSION", "trainables.stage")


def _check_pinned(lines: list[str], pinned: dict, version: int, name: str, module: str) -> None:
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    assert pinned.get(version) == digest, (
        "The stage config schema or its key exemptions changed:\n  " + "\n  ".join(lines) + "\n"
        f"If what a stage computes changed (a new setting, a new default), bump {module}.{name} "
        f"so no stored stage or MLflow run of the old meaning is reused; then pin {{version: {digest!r}}} in "
        "tests/test_stage_keys.py.")


def test_the_format_version_is_in_the_key(monkeypatch):
    import trainables.stage as stage

    before = TEACHER.key()
    monkeypatch.setattr(stage, "STAGE_FORMAT_VERSION", STAGE_FORMAT_VERSION + 1)
    assert TEACHER.key() != before


# the keys of TEACHER and STUDENT at each format version: a key that moved without a bump would make
# every --resume retrain, and a hash that changed shape (its field names, order, length) the same
PINNED_KEYS = {3: ("g1-270b9f8fadffa015dd68", "g2-7e229e6a7282a40e0bb2"),
               4: ("g1-6fb4b26c3359183e495d", "g2-8cc84fe041ba5963f9a3")}


def test_the_keys_of_a_fixed_spec_are_pinned_to_the_format_version():
    assert (TEACHER.key(), STUDENT.key()) == PINNED_KEYS[STAGE_FORMAT_VERSION]


def test_a_student_key_does_not_depend_on_the_chain_length():
    """Generation 2 of a 2-generation chain is generation 2 of a 4-generation chain (issue 14)."""
    short = dataclasses.replace(STUDENT, distill=dataclasses.replace(STUDENT.distill, generations=2))
    assert short.key() == STUDENT.key()


# LLM stages (trainables/llm/stage.py): the same two guards, against LLM_STAGE_FORMAT_VERSION
LLM_PINNED_SCHEMA = {1: "f83191951b82228b", 2: "c5654dc617e86996"}
LLM_STAGE = LLMStageSpec(seed=0, data=DATA, llm=LLMSettings(shots_per_class=2))


@pytest.mark.parametrize("shots", [2, 0], ids=["few-shot", "zero-shot"])
def test_every_llm_setting_that_changes_answers_changes_the_key(shots):
    spec = dataclasses.replace(LLM_STAGE, llm=LLMSettings(shots_per_class=shots))
    for path in leaf_paths(spec):
        # greedy zero-shot answers do not depend on the seed: its prompts draw nothing
        exempt = path in LLM_KEY_EXEMPT or (shots == 0 and path == "seed")
        other = with_field(spec, path)
        if path == "llm.shots_per_class" and shots == 0:
            continue  # 0 -> 1 makes it few-shot, where the seed enters the key: covered by the few-shot case
        assert (other.key() == spec.key()) == exempt, f"{path}: exempt {exempt} but the key says otherwise"


def test_llm_schema_is_pinned_to_its_format_version():
    lines = schema_lines(LLMStageSpec) + [f"key exempt: {sorted(LLM_KEY_EXEMPT)}"]
    _check_pinned(lines, LLM_PINNED_SCHEMA, LLM_STAGE_FORMAT_VERSION, "LLM_STAGE_FORMAT_VERSION", "trainables.llm.stage")
