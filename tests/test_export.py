"""Export, predict and selective prediction without a sweep (issue 24): the spec's `export:` option,
the disk cost `emocal plan` prints, an export folder that loads alone and gives the model's own
logits, `emocal predict`'s input errors and its one row per input row, and the risk-coverage
curve against a brute-force reference. The real sweep's export, registry and server are in
tests/test_sweep_e2e.py."""
from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
import torch

from orchestrator.spec import SpecError, parse_spec
from trainables.models import build_model, load_tokenizer, state_to_numpy

BASE = {"name": "x", "seeds": [0, 1], "datasets": ["isear"], "methods": ["ce", "csd"], "generations": 3}
LABELS = ["joy", "fear", "anger", "sadness", "disgust", "shame", "guilt"]


# ---- the spec's export: option ---------------------------------------------------------------

@pytest.mark.parametrize("export, where", [
    ([{"dataset": "isear", "method": "cds"}], "export[0].method: 'cds' is not a method of this spec with weights "
                                              "to keep; did you mean 'csd'?"),
    ([{"dataset": "isaer", "method": "csd"}], "export[0].dataset: 'isaer'"),
    ([{"dataset": "isear"}], "export[0]: expected a mapping with exactly the keys dataset and method"),
    ({"dataset": "isear", "method": "csd"}, "export: expected a list"),
    ([{"dataset": "isear", "method": "csd"}] * 2, "export: a (dataset, method) pair is listed twice"),
])
def test_export_pairs_are_checked_with_their_key_path(export, where):
    with pytest.raises(SpecError, match="^<spec>: " + re.escape(where)):
        parse_spec({**BASE, "export": export}, check_data=False)


def _plans(spec):
    from orchestrator.plan import trial_plan
    from trainables.stage import DataConfig

    data = DataConfig(dataset="isear", ood_dataset=None, data_root="", model="packaged:all-MiniLM-L6-v2")
    return [trial_plan(spec, entry, method, seed, data) for entry in spec.datasets for method in spec.methods
            for seed in spec.seeds]


def test_exportable_pairs_keep_every_generation_and_no_key_changes():
    from orchestrator.plan import handover_keys, kept_keys

    plain = parse_spec(BASE, check_data=False)
    exporting = parse_spec({**BASE, "export": [{"dataset": "isear", "method": "csd"}]}, check_data=False)
    before, after = _plans(plain), _plans(exporting)
    assert [[s.key() for s in t.all_stages] for t in before] == [[s.key() for s in t.all_stages] for t in after]
    csd = {s.key() for t in after if t.method.name == "csd" for s in t.stages}
    assert len(csd) == 6 and not csd <= handover_keys(after)  # the last generations a student never reads
    assert kept_keys(exporting, after) == handover_keys(after) | csd
    assert kept_keys(plain, before) == handover_keys(before)


def test_the_disk_cost_is_the_size_safetensors_writes(tiny_model, tmp_path):
    """state_bytes counts the state on the meta device; the file save_file writes has that size."""
    from safetensors.numpy import save_file

    from trainables.models import HUB_CONFIGS, encoder_config, state_bytes

    save_file(state_to_numpy(build_model(tiny_model, 7, seed=0)), tmp_path / "w.safetensors")
    assert abs(state_bytes(tiny_model, 7) - (tmp_path / "w.safetensors").stat().st_size) < 4096  # header padding
    assert "roberta-base" in HUB_CONFIGS and encoder_config("roberta-base").vocab_size == 50265  # offline too
    assert 124e6 * 4 < state_bytes("roberta-base", 7) < 126e6 * 4  # roberta-base: 125M parameters


# ---- an export folder, loaded alone ----------------------------------------------------------

TEXTS = ["When I passed my exam.", "", "angry " * 80, "The dog died.", "x"]


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory, tiny_model):
    """A tiny BERT with our head, exported with T = 2 (the `emocal` kind: encoder/ + our head)."""
    from trainables.exporting import write_export

    model = build_model(tiny_model, len(LABELS), seed=3).eval()
    folder = write_export(tmp_path_factory.mktemp("export") / "model", state_to_numpy(model), tiny_model, LABELS,
                          max_length=16, eval_batch_size=2, calibration={"temperature": 2.0})
    return model, folder


def test_an_export_folder_gives_the_models_own_logits(tiny_export, tiny_model):
    from trainables.batching import encode
    from trainables.serving import CalibratedClassifier
    from trainables.train import predict_logits

    model, folder = tiny_export
    classifier = CalibratedClassifier(folder)
    predicted = classifier.predict(TEXTS)
    reference = predict_logits(model, encode(TEXTS, [0] * len(TEXTS), load_tokenizer(tiny_model), 16), 2)
    assert np.array_equal(predicted.logits, reference)  # the sweep's batches, the sweep's numbers
    z = reference.astype(np.float64) / 2.0
    expected = np.exp(z - z.max(1, keepdims=True))
    assert np.allclose(predicted.probabilities, expected / expected.sum(1, keepdims=True), atol=1e-12)
    assert predicted.empty.tolist() == [False, True, False, False, False]
    assert predicted.truncated.tolist() == [False, False, True, False, False]


def test_a_roberta_export_loads_with_transformers_alone(tmp_path):
    """RoBERTa + the first-token head is RobertaForSequenceClassification: the folder loads with
    AutoModelForSequenceClassification and gives our logits."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, RobertaConfig, RobertaModel

    from trainables.exporting import write_export
    from trainables.models import PACKAGED_MINILM
    from trainables.serving import CalibratedClassifier

    torch.manual_seed(0)
    RobertaModel(RobertaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=40, pad_token_id=0)).save_pretrained(tmp_path / "enc")
    load_tokenizer(PACKAGED_MINILM).save_pretrained(tmp_path / "enc")
    model = build_model(str(tmp_path / "enc"), 3, seed=1).eval()
    folder = write_export(tmp_path / "out", state_to_numpy(model), str(tmp_path / "enc"), ["a", "b", "c"], 16, 4,
                          {"temperature": 1.0})
    assert CalibratedClassifier(folder).spec["kind"] == "transformers"
    hf = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = AutoTokenizer.from_pretrained(folder)(TEXTS[:1], return_tensors="pt")
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["attention_mask"]).numpy()
        theirs = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.numpy()
    assert np.abs(ours - theirs).max() < 1e-5 and hf.config.id2label == {0: "a", 1: "b", 2: "c"}


# ---- emocal predict --------------------------------------------------------------------------

def _predict(tiny_export, tmp_path, content: bytes, name: str = "in.csv", *extra: str):
    from orchestrator import cli

    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out.csv"
    rc = cli.main(["predict", str(tiny_export[1]), str(path), "--out", str(out), *extra])
    return rc, out


@pytest.mark.parametrize("name, content, message", [
    ("in.csv", b"sentence,id\nhello,1\n", "in.csv: no column 'text' (its columns: sentence, id); pass --text-column"),
    ("in.csv", b"", "in.csv is empty"),
    ("in.csv", b"text\n", "in.csv: a header and no rows"),
    ("in.csv", b"text\nfine\nal\xe9a\n", "in.csv line 3: bytes that are not UTF-8"),
    ("in.txt", b"ok\n\xff\xfe\n", "in.txt line 2: bytes that are not UTF-8"),
    ("in.jsonl", b'{"text": "a"}\n{"txt": "b"}\n', "in.jsonl line 2: no key 'text'"),
    ("in.jsonl", b'{"text": "a"}\nnope\n', "in.jsonl line 2: not JSON"),
])
def test_bad_input_fails_at_once_naming_the_problem(tiny_export, tmp_path, capsys, name, content, message):
    rc, out = _predict(tiny_export, tmp_path, content, name)
    assert rc == 2 and message in capsys.readouterr().err and not out.exists()


def test_one_output_row_per_input_row_with_flags_and_abstain(tiny_export, tmp_path):
    rows = [{"id": i, "text": t} for i, t in enumerate(TEXTS)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["id", "text"])
    writer.writeheader()
    writer.writerows(rows)
    rc, out = _predict(tiny_export, tmp_path, buffer.getvalue().encode(), "in.csv", "--abstain-below", "0.99")
    assert rc == 0
    got = list(csv.DictReader(out.open()))
    assert len(got) == len(TEXTS) and [r["text"] for r in got] == TEXTS
    assert [r["empty_text"] for r in got] == ["False", "True", "False", "False", "False"]
    assert [r["truncated"] for r in got] == ["False", "False", "True", "False", "False"]
    assert all(r["abstain"] == "True" for r in got)  # a random tiny model is never 99% sure
    probs = np.array([[float(r[f"prob_{name}"]) for name in LABELS] for r in got])
    assert np.allclose(probs.sum(1), 1.0) and [r["label"] for r in got] == [LABELS[i] for i in probs.argmax(1)]


def test_plain_text_keeps_empty_lines_as_rows(tiny_export, tmp_path):
    rc, out = _predict(tiny_export, tmp_path, "first\n\nthird\n".encode(), "in.txt")
    got = list(csv.DictReader(out.open()))
    assert rc == 0 and [r["line"] for r in got] == ["1", "2", "3"] and got[1]["empty_text"] == "True"


# ---- weights that were not kept --------------------------------------------------------------

def test_an_unkept_stage_whose_parent_kept_nothing_is_refused_with_the_fix(tmp_path):
    from orchestrator.export import ExportError, stage_weights
    from trainables.methods.registry import DistillConfig, MixupConfig
    from trainables.stage import DataConfig, StageSpec
    from trainables.store import StageStore
    from trainables.train import TrainConfig

    data = DataConfig(dataset="isear", ood_dataset=None, data_root="", model="m")
    spec = StageSpec(generation=2, seed=0, data=data, train=TrainConfig(), teacher=MixupConfig("none"),
                     distill=DistillConfig(), parent="g1-parent")
    store = StageStore(tmp_path)
    arrays = {"test_logits": np.zeros((2, 3), np.float32)}
    for key in ("g1-parent", spec.key()):
        store.save(key, {"key": key, "kept": []}, None, arrays, None)
    with pytest.raises(ExportError, match=r"neither did its parent g1-parent.*export: \[\{dataset: isear, method: "
                                          r"csd\}\].*--keep-all-weights"):
        stage_weights(store, spec, "isear", "csd", tmp_path / "scratch")


# ---- selective prediction --------------------------------------------------------------------

def test_risk_coverage_and_aurc_match_a_brute_force_loop():
    from trainables.calibration import aurc, risk_coverage

    rng = np.random.default_rng(0)
    confidence = np.round(rng.random(200), 2)  # ties on purpose
    correct = rng.random(200) < confidence
    thresholds, coverage, risk = risk_coverage(confidence, correct)
    area = 0.0
    previous = 0.0
    for t, c, r in zip(thresholds, coverage, risk):  # keep what is at least as confident as t
        kept = confidence >= t
        assert c == kept.mean() and r == pytest.approx((~correct[kept]).mean(), abs=1e-15)
        area += r * (c - previous)
        previous = c
    assert coverage[-1] == 1.0 and aurc(confidence, correct) == pytest.approx(area, abs=1e-15)
    unique = rng.permutation(200) / 200  # no ties: the mean risk over the k most confident
    order = np.argsort(-unique)
    assert aurc(unique, correct) == pytest.approx(np.mean([(~correct[order[:k]]).mean() for k in range(1, 201)]))


def test_plan_prints_the_disk_cost_of_the_kept_weights(tiny_model, data_root, capsys):
    from orchestrator.plan import build_plan, handover_keys, weights_summary
    from orchestrator.sweep import print_plan, plan_summary
    from trainables.data import DATASETS
    from trainables.models import state_bytes

    spec = parse_spec({**BASE, "model": tiny_model, "export": [{"dataset": "isear", "method": "csd"}]},
                      data_root=str(data_root))
    trials = build_plan(spec)
    cost = weights_summary(spec, trials)
    one = state_bytes(tiny_model, len(DATASETS["isear"].labels))
    students = len(handover_keys(trials))
    assert cost["for_students"] == {"stages": students, "bytes": students * one}
    assert cost["with_export"]["stages"] == students + 2  # csd's last generation, one per seed
    assert cost["one_more_pair"] == {"stages": 2, "bytes": 2 * one}
    print_plan(spec, {**plan_summary(spec, trials), "kept_weights": cost}, "table")
    assert f"{students} stages, {students * one / 1e9:.2f} GB for students" in capsys.readouterr().out


def test_export_checks_the_folder_against_the_runs_numbers(tiny_model, data_root, tmp_path):
    """The folder predicts the stage's own test rows; a model whose classes or numbers differ is refused."""
    from orchestrator.export import ExportError, check_export
    from trainables import calibration
    from trainables.batching import encode
    from trainables.data import DATASETS
    from trainables.exporting import write_export
    from trainables.methods.registry import DistillConfig, MixupConfig
    from trainables.stage import DataConfig, StageSpec, id_splits
    from trainables.train import TrainConfig, predict_logits

    data = DataConfig(dataset="isear", ood_dataset=None, data_root=str(data_root), model=tiny_model, max_length=32,
                      max_eval=30)
    spec = StageSpec(generation=1, seed=0, data=data, train=TrainConfig(eval_batch_size=8), teacher=MixupConfig("none"),
                     distill=DistillConfig())
    _, _, test = id_splits(data)
    labels = list(DATASETS["isear"].labels)
    model = build_model(tiny_model, len(labels), seed=5).eval()
    logits = predict_logits(model, encode(test.texts, test.labels, load_tokenizer(tiny_model), 32), 8)
    report = calibration.calibration_report(logits, test.labels, temperature=1.7)
    record = {"temperature": 1.7, "n_bins": 10, "test_macro_f1": report["macro_f1"],
              "ece_percent": {"test": {"after_scaling": report["ece"], "before_scaling": 0.0}}}
    folder = write_export(tmp_path / "ok", state_to_numpy(model), tiny_model, labels, 32, 8, record)
    stored = {"test_logits": logits, "test_labels": test.labels}
    assert check_export(folder, spec, stored, record) == 0.0  # the sweep's batches: the same bits
    other = logits.copy()
    other[0] = other[0][::-1]  # one row's classes swapped: another model on one text
    with pytest.raises(ExportError, match="the predicted classes differ"):
        check_export(folder, spec, {**stored, "test_logits": other}, record)
    with pytest.raises(ExportError, match="test ECE"):
        check_export(folder, spec, stored, {**record, "ece_percent": {"test": {"after_scaling": 1.0}}})
