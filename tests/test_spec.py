"""Specs: every shipped spec parses; bad input is refused with the key or file named; the plan shares stages."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.plan import build_plan, launch_order, plan_summary
from orchestrator.spec import SpecError, load_spec, parse_spec
from tests.conftest import require_wordnet

SPECS = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.yaml"))
BASE = {"name": "t", "seeds": [0], "methods": ["csd"], "datasets": ["isear"], "generations": 2}


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_shipped_specs_parse(path, data_root):
    if "electra_lcl" in path.read_text():  # its synonym copies read WordNet, checked with the data
        require_wordnet()
    spec = load_spec(path, data_root=str(data_root))
    assert build_plan(spec)


def _parse(data_root, **changes):
    raw = {**BASE, **changes}
    return parse_spec(raw, source_path="t.yaml", data_root=str(data_root))


@pytest.mark.parametrize("changes, message", [
    ({"trian": {"lr": 1e-5}}, r"trian: unknown key; did you mean 'train'\?"),
    ({"train": {"lr": "fast"}}, r"train\.lr: expected a number"),
    ({"train": {"epochs": 0}}, r"train: epochs must be >= 1"),
    ({"methods": ["sim_mixup_cds"]}, r"methods\[0\]: unknown method 'sim_mixup_cds'; known methods"),
    ({"methods": [{"name": "v", "base": "csd", "distill": {"generations": 1}}]}, r"methods\[0\].*no student"),
    ({"datasets": ["isaer"]}, r"datasets\[0\]\.name: unknown dataset 'isaer'"),
    ({"seeds": []}, r"seeds: give at least one seed"),
    ({"ood": {"percents": [150]}}, r"percents: 150.0 is not a percentage"),
    ({"resources": {"gpus_per_trial": 1.5}}, r"resources\.gpus_per_trial"),
    # names become folders, MLflow filters and trial keys "<dataset>-<method>-seed<n>"
    ({"datasets": [{"name": "isear-v2", "source": "isear"}]},
     r"datasets\[0\]\.name: 'isear-v2' is not a valid dataset name.*no '-'.*e\.g\. 'isear_v2'"),
    ({"datasets": [{"name": "../isear", "source": "isear"}]}, r"datasets\[0\]\.name: '\.\./isear' is not a valid"),
    ({"datasets": [{"name": "mine", "source": {"name": "my data", "path": "x.csv", "labels": ["a", "b"]}}]},
     r"datasets\[0\]\.source\.name: 'my data' is not a valid dataset name.*'my_data'"),
    ({"methods": [{"name": "csd' OR '1", "base": "csd"}]}, r"methods\[0\]\.name: .* is not a valid method name"),
    ({"methods": [{"name": "x" * 65, "base": "csd"}]}, r"methods\[0\]\.name: .* is not a valid method name"),
    ({"datasets": ["isear", {"name": "isear", "train": {"lr": 1e-5}}]},
     r"datasets: a dataset name is listed twice: \['isear'\]; give each entry its own `name`"),
    ({"methods": ["csd", {"name": "csd", "base": "sd"}]}, r"methods: a method name is listed twice: \['csd'\]"),
])
def test_bad_specs_name_the_key(data_root, changes, message):
    with pytest.raises(SpecError, match=message):
        _parse(data_root, **changes)


def test_missing_data_file_names_file_and_fetch_command(tmp_path):
    (tmp_path / "isear").mkdir()
    with pytest.raises(SpecError, match=r"isear.csv.*python -m orchestrator.data fetch isear"):
        parse_spec(BASE, source_path="t.yaml", data_root=str(tmp_path))


def test_bad_yaml_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseeds: [0\n")
    with pytest.raises(SpecError, match=r"bad.yaml: line \d+"):
        load_spec(bad)


def test_custom_method_from_options(data_root):
    spec = _parse(data_root, methods=[{"name": "sim_logits_batch", "base": "sim_mixup_csd",
                                       "teacher": {"layer": "logits", "alpha": 0.4, "scope": "batch"}}])
    m = spec.methods[0]
    assert (m.teacher.kind, m.teacher.layer, m.teacher.alpha, m.teacher.scope, m.distill.kind) == \
        ("sim", "logits", 0.4, "batch", "csd")


def test_paper_defaults_per_dataset(data_root):
    spec = _parse(data_root, datasets=["goemotions", "empathetic_dialogues", {"name": "isear", "train": {"lr": 1e-5}}])
    got = {d.name: (d.train.batch_size, d.train.lr, d.ood_finetune.batch_size, d.ood) for d in spec.datasets}
    assert got == {"goemotions": (64, 2.5e-5, 8, "dailydialog"), "empathetic_dialogues": (64, 5e-5, 16, "ssec"),
                   "isear": (32, 1e-5, 8, "emotion_stimulus")}


def test_trial_keys_split_back_into_their_names(data_root):
    """Names may hold _ and ., never -, so a trial key names one (dataset, method, seed) only."""
    spec = _parse(data_root, datasets=[{"name": "isear.v2", "source": "isear"}, "isear"], seeds=[0, 12],
                  methods=["sim_mixup_csd", {"name": "csd_T.5", "base": "csd"}])
    trials = build_plan(spec)
    assert len({t.key for t in trials}) == len(trials) == 8
    for t in trials:
        assert t.key.split("-") == [t.dataset, t.method.name, f"seed{t.seed}"]


def test_plan_shares_prefixes(data_root):
    spec = _parse(data_root, methods=["ce", "sd", "csd", "ce_ts", "sim_mixup_csd", "sim_m_mixup"], seeds=[0, 1])
    trials = build_plan(spec)
    keys = {t.method.name: [s.key() for s in t.all_stages] for t in trials if t.seed == 0}
    ce = keys["ce"][0]
    assert keys["sd"][0] == keys["csd"][0] == keys["ce_ts"][0] == ce  # one CE teacher
    assert keys["sd"][1] != keys["csd"][1]  # T = 1 vs calibrated T
    assert keys["sim_mixup_csd"][0] == ce  # the data map is the CE teacher's run
    assert keys["sim_mixup_csd"][1] == keys["sim_m_mixup"][1]  # the same Sim-MixUp teacher
    summary = plan_summary(spec, trials)
    # per seed: ce, sd g2, csd g2, sim g1, sim+csd g2 = 5 unique stages
    assert summary["stages_unique"] == 10 and summary["stages_total"] == 2 * (1 + 2 + 2 + 1 + 3 + 2)


def test_launch_order_puts_each_stage_creator_before_its_readers(data_root):
    """A trial started before the trial that trains its teacher waits in its slot, holding its
    CPUs and GPU share idle (in a real run, ce_ts sat behind Sim-MixUp students for an hour)."""
    spec = _parse(data_root, methods=["sim_mixup_csd", "ce_ts", "csd", "sim_m_mixup", "ce"], seeds=[0, 1])
    trials = launch_order(build_plan(spec))
    names = [t.key.split("-")[1] for t in trials]
    # the CE teachers by the shortest trials that have them (ce_ts before ce in this spec); then
    # what reads them (the Sim-MixUp teachers by sim_m_mixup, the shorter chain); then the
    # students of the Sim-MixUp teachers, although the spec lists them first
    assert names == ["ce_ts", "ce_ts", "csd", "csd", "sim_m_mixup", "sim_m_mixup", "ce", "ce",
                     "sim_mixup_csd", "sim_mixup_csd"], names
    position = {t.key: i for i, t in enumerate(trials)}
    shortest: dict[str, int] = {}
    for t in sorted(trials, key=lambda t: len(t.all_stages)):
        for s in t.all_stages:
            shortest.setdefault(s.key(), position[t.key])
    for i, t in enumerate(trials):  # every stage a trial reads is trained by a trial started before it
        assert all(shortest[s.key()] <= i for s in t.all_stages), t.key
    assert sorted(t.key for t in trials) == sorted(t.key for t in build_plan(spec))


def test_a_local_model_folder_is_made_absolute_on_the_driver(data_root, tmp_path, monkeypatch):
    """Trials run in their own folders, on other nodes: a relative model path must not depend on that."""
    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert _parse(data_root, model="models/mine").model == str(tmp_path / "models" / "mine")
    assert _parse(data_root, model="FacebookAI/roberta-base").model == "FacebookAI/roberta-base"  # a hub name
    with pytest.raises(SpecError, match=r"model: \./models/missing is not a folder"):
        _parse(data_root, model="./models/missing")


def test_dry_run_json(data_root, wordnet):
    out = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "specs/full_paper.yaml", "--dry-run",
                          "--format", "json", "--data-root", str(data_root)],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=True)
    plan = json.loads(out.stdout)
    # 18 chain presets (electra_lcl too) x 5 seeds, and the LLM rows: 2 zero-shot trials and 2 x 3 few-shot prompts, per dataset
    assert len(plan["trials"]) == 3 * (5 * 18 + 2 + 2 * 3)
    llm = sorted(t["trial"] for t in plan["trials"] if t["dataset"] == "isear" and "shots_per_class" in t)
    assert llm == ["isear-gemma2_9b_fs-seed0", "isear-gemma2_9b_fs-seed1", "isear-gemma2_9b_fs-seed2",
                   "isear-gemma2_9b_zs-seed0", "isear-llama3_8b_fs-seed0", "isear-llama3_8b_fs-seed1",
                   "isear-llama3_8b_fs-seed2", "isear-llama3_8b_zs-seed0"]
    assert plan["resources"]["gpus_per_llm_trial"] == 1
    assert plan["stages_unique"] < plan["stages_total"]
    # Electra+LCL: on its own encoder with the LCL code's settings, one generation, a stage of its own
    lcl = [t for t in plan["trials"] if t["method"] == "electra_lcl"]
    assert len(lcl) == 15 and {t["model"] for t in lcl} == {"google/electra-base-discriminator"}
    assert lcl[0]["train_overrides"] == {"batch_size": 10, "epochs": 5, "grad_clip": 1.0, "lr": 2e-5,
                                         "weight_decay": 0.01, "group_by_length": False, "select": "val_accuracy"}
    assert all(t["generations"] == 1 and len(t["stages"]) == 1 and t["lcl_second_view"] == "synonym" for t in lcl)
    assert {t["model"] for t in plan["trials"] if t["method"] != "electra_lcl" and "shots_per_class" not in t} == {"roberta-base"}
    assert plan["resources"]["gpus_per_trial"] > 0


def test_missing_data_root_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("EMOCAL_DATA", raising=False)
    out = subprocess.run([sys.executable, "-m", "orchestrator.sweep", "specs/quickstart.yaml"], capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[1], env={"PATH": "/usr/bin:/bin"} | {
                             k: v for k, v in __import__("os").environ.items() if k != "EMOCAL_DATA"})
    assert out.returncode == 2 and "--data-root" in out.stderr
