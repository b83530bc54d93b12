"""The data layer against the real files (docs/method.md, Data; paper tables 13-18) and small ones.

Real files come from $EMOCAL_DATA, else ../shared/data beside the checkout; those tests are
skipped when it is absent (and fail the run under CI=true, tests/conftest.py). Everything here runs in a few seconds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from orchestrator import data as data_cli
from trainables.data import (
    DATASETS,
    DataError,
    DatasetInfo,
    PreparedDataset,
    Split,
    UserDatasetSpec,
    check_files,
    label_counts,
    load_dataset,
    ood_finetune_indices,
)
from trainables.data import cache
from trainables.data.isear import is_no_description, read_rows
from trainables.data.splits import split_sizes, stratified_order

from tests.conftest import DATA_ROOT, require_data_root

real_data = pytest.mark.usefixtures("data_root")  # skips without the data, fails under CI=true (conftest)

# Exact results for these (docs/method.md, Data; ours, not the paper's, where they differ).
EXPECTED_TOTALS = {
    "goemotions": (27980, 3524, 3534),
    "empathetic_dialogues": (19240, 2752, 2542),
    "dailydialog": (12859, 873, 1373),
    "ssec": (1286, 68, 791),
}
SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def prepared(data_root) -> dict[str, PreparedDataset]:
    return {name: load_dataset(name, data_root) for name in DATASETS}


# ---- counts against docs/method.md and tables 13-18 ------------------------------------


@real_data
@pytest.mark.parametrize("name", sorted(EXPECTED_TOTALS))
def test_exact_totals_from_method(prepared, name):
    ds = prepared[name]
    assert (len(ds.train), len(ds.validation), len(ds.test)) == EXPECTED_TOTALS[name]


@real_data
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_counts_match_paper_tables(prepared, name):
    """Every split total within 1% of the paper, every class within 1% (or 3 samples).

    SSEC's pool is the one exception per class: the paper's 1,274 is not a stratified 95%
    (anger loses 33 of 495 there), so anger is 470 here against 462; docs/method.md fixes the
    split as stratified, and the total stays within 1%.
    """
    counts = label_counts(prepared[name])
    for split, paper in DATASETS[name].paper_counts.items():
        ours_total, paper_total = sum(counts[split].values()), sum(paper.values())
        assert abs(ours_total - paper_total) <= 0.01 * paper_total, (split, ours_total, paper_total)
        class_tol = 0.02 if (name, split) == ("ssec", "train") else 0.01
        for label, n in paper.items():
            assert abs(counts[split][label] - n) <= max(3, class_tol * n), (split, label, counts[split][label], n)


@real_data
def test_isear_and_emotion_stimulus_totals(prepared):
    isear, es = prepared["isear"], prepared["emotion_stimulus"]
    assert (len(isear.train), len(isear.validation), len(isear.test)) == (3838, 1280, 1279)  # paper 3837/1279/1279
    assert (len(es.validation), len(es.test)) == (1043, 1044)  # paper 1044/1045
    assert len(es.validation) + len(es.test) == round(0.95 * es.size)


# ---- each loader's quirks on the real files --------------------------------------------


@real_data
def test_goemotions_quirks(prepared):
    ds = prepared["goemotions"]
    assert set(ds.drops) == {"neutral_only", "multiple_ekman_labels", "duplicate_train",
                             "duplicate_validation", "duplicate_test"}
    assert any(t.startswith('"') for t in ds.train.texts)  # no CSV quoting: `"` kept as published
    for split in SPLITS:
        pairs = list(zip(ds.split(split).texts, ds.split(split).labels.tolist()))
        assert len(pairs) == len(set(pairs))


@real_data
def test_isear_pipes_inside_text_and_no_description(prepared):
    rows = read_rows(DATA_ROOT / "isear" / "isear.csv")
    assert len(rows) == 7666
    assert {e for e, _, _ in rows} == {"joy", "fear", "anger", "sadness", "disgust", "shame", "guilt"}
    piped = [r for r in rows if "|" in r[1]]
    assert len(piped) == 163  # SOURCE.md: 163 rows hold `|` inside SIT
    line199 = next(r for r in rows if r[2] == 199)
    assert line199[0] == "joy" and line199[1].endswith("á|encounter.\"")
    ds = prepared["isear"]
    assert ds.drops["no_description"] == 156  # paper: 154
    assert ds.drops["label_guilt"] == 1060
    texts = set(ds.train.texts + ds.validation.texts + ds.test.texts)
    assert "[ No response.]" not in texts and "NO RESPONSE." not in texts
    assert "[ Same as above - friends who torture animals.]" in texts


def test_isear_no_description_examples():
    for text in ("[ No response.]", "NO RESPONSE", "[ Never experienced.]", "Doesn't apply.",
                 "Does not apply.", "[ Do not know.]", "Can't remember that feeling.", "[ Same as in anger.]",
                 "Blank.", "Not applicable to myself.", "[ I have never felt this emotion.]"):
        assert is_no_description(text), text
    for text in ("When my grandfather died.", "Nothing could stop me from laughing when I passed my exam.",
                 "[ Same as above - friends who torture animals.]", "I did not know what to do when the dog bit me."):
        assert not is_no_description(text), text


@real_data
def test_dailydialog_mismatched_dialogue(prepared):
    ds = prepared["dailydialog"]
    assert ds.drops["label_count_mismatch"] == 12  # train dialogue 7852: 12 utterances, 11 labels
    assert "Sam , can we stop at this bicycle shop ?" not in ds.train.texts
    assert all("__eou__" not in t and t == t.strip() for t in ds.train.texts[:500])


@real_data
def test_ssec_format(prepared):
    ds = prepared["ssec"]
    assert ds.drops["empty_annotation_train"] == 2
    assert ds.drops["no_emotion_train"] == 1034 and ds.drops["no_emotion_test"] == 660
    assert len(ds.train) + len(ds.validation) == 1354
    assert not any("EMPTY ANNOTATION" in t for t in ds.train.texts + ds.validation.texts)


@real_data
def test_emotion_stimulus_crlf_and_labels(prepared):
    ds = prepared["emotion_stimulus"]
    texts = ds.train.texts + ds.validation.texts + ds.test.texts
    assert not any(t.endswith(("\r", " ")) for t in texts)
    assert ds.drops == {"label_surprise": 213, "duplicate_all": 4}
    assert ds.size == 2414 - 213 - 4


@real_data
def test_empathetic_dialogues_conversations_csv(prepared):
    ds = prepared["empathetic_dialogues"]
    assert not any("_comma_" in t for t in ds.train.texts)
    assert any("," in t for t in ds.train.texts)


ED_HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"


def _ed_official(folder: Path) -> None:
    """A few rows in the official release's format (one row per utterance, `_comma_`)."""
    rows = {
        "train.csv": [
            "hit:0_conv:1,1,sentimental,I remember going to the fireworks_comma_ with my friend.,1,Hi_comma_ there,5|5|5_2|2|5,",
            "hit:0_conv:1,2,sentimental,I remember going to the fireworks_comma_ with my friend.,0,Was it fun?,5|5|5_2|2|5,",
            "hit:1_conv:2,1,terrified,A spider was in my bed.,1,It was huge,,",
            "hit:1_conv:3,1,terrified,A spider was in my bed.,1,Again,,",  # duplicate (text, label)
            "hit:2_conv:4,1,trusting,I let my neighbour keep my keys.,1,ok,,",
        ],
        "valid.csv": ["hit:3_conv:5,1,furious,Someone took my parking spot.,1,grr,,"],
        "test.csv": ["hit:4_conv:6,1,impressed,My son built a robot_comma_ alone!,1,wow,,"],
    }
    folder.mkdir(parents=True)
    for name, lines in rows.items():
        (folder / name).write_text(ED_HEADER + "\n".join(lines) + "\n", encoding="utf-8")


def test_empathetic_dialogues_official_format(tmp_path):
    _ed_official(tmp_path / "empathetic_dialogues" / "empatheticdialogues")
    check_files("empathetic_dialogues", tmp_path)
    ds = load_dataset("empathetic_dialogues", tmp_path)
    labels = ds.labels
    assert list(ds.train.texts) == ["I remember going to the fireworks, with my friend.",
                                    "A spider was in my bed.", "I let my neighbour keep my keys."]
    assert [labels[y] for y in ds.train.labels] == ["sadness", "fear", "trust"]
    assert ds.drops == {"duplicate_train": 1}
    assert ds.validation.texts == ("Someone took my parking spot.",) and labels[ds.validation.labels[0]] == "anger"
    assert ds.test.texts == ("My son built a robot, alone!",) and labels[ds.test.labels[0]] == "surprise"


def test_empathetic_dialogues_unknown_emotion(tmp_path):
    folder = tmp_path / "empathetic_dialogues" / "empatheticdialogues"
    _ed_official(folder)
    with open(folder / "test.csv", "a", encoding="utf-8") as f:
        f.write("hit:5_conv:7,1,bored,Nothing to do.,1,meh,,\n")
    with pytest.raises(DataError, match=r"test\.csv:3: unknown label 'bored'; allowed labels: .*afraid"):
        load_dataset("empathetic_dialogues", tmp_path)


def test_emotion_stimulus_tagged_format(tmp_path):
    folder = tmp_path / "emotion_stimulus"
    folder.mkdir()
    (folder / "Emotion Cause.txt").write_text(
        "<happy>I was happy <cause>to win<\\cause> . <\\happy>\n<sad>She was sad <cause>about it<\\cause> .<\\sad>\n")
    lines = [f"<{e}>Sentence {i} about {e} . <\\{e}>" for i, e in
             enumerate(["fear", "anger", "surprise", "disgust", "shame", "happy"] * 8)]
    (folder / "No Cause.txt").write_text("\n".join(lines) + "\n")
    ds = load_dataset("emotion_stimulus", tmp_path)
    assert ds.drops == {"label_surprise": 8}
    texts = ds.train.texts + ds.validation.texts + ds.test.texts
    assert "I was happy to win ." in texts and ds.size == 2 + 40


# ---- OOD fine-tuning subsets, splits, label orders -------------------------------------


@real_data
@pytest.mark.parametrize("name", ["dailydialog", "ssec", "emotion_stimulus"])
def test_ood_finetune_indices_nested_stratified_reproducible(prepared, name):
    ood = prepared[name]
    subsets = {p: ood_finetune_indices(ood, p, seed=13) for p in (1, 3, 5)}
    for p, idx in subsets.items():
        assert len(idx) == min(round(p / 100 * ood.size), len(ood.train))
        assert len(np.unique(idx)) == len(idx) and idx.min() >= 0 and idx.max() < len(ood.train)
        np.testing.assert_array_equal(idx, ood_finetune_indices(ood, p, seed=13))
        # stratified: each class within 1 of its proportional share of the pool
        pool = np.bincount(ood.train.labels, minlength=ood.num_labels)
        got = np.bincount(ood.train.labels[idx], minlength=ood.num_labels)
        assert np.all(np.abs(got - pool * len(idx) / len(ood.train)) <= 1.0 + 1e-9)
    assert set(subsets[1]) <= set(subsets[3]) <= set(subsets[5])
    assert not np.array_equal(ood_finetune_indices(ood, 3, seed=14), subsets[3])
    if name == "emotion_stimulus":
        assert len(subsets[5]) == len(ood.train)  # docs/method.md, Splits and OOD pools: 5% is the whole pool


def test_stratified_order_prefixes_and_split_sizes():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    order = stratified_order(labels, seed=3)
    assert sorted(order.tolist()) == list(range(100))
    for k in (1, 7, 33, 60, 99):
        counts = np.bincount(labels[order[:k]], minlength=3)
        assert np.all(np.abs(counts - k * np.array([0.5, 0.3, 0.2])) <= 1.0)
    assert split_sizes(6397, (0.6, 0.2, 0.2)) == [3838, 1280, 1279]
    assert split_sizes(1354, (0.95, 0.05)) == [1286, 68]


@real_data
def test_isear_split_seed_fixed_and_independent():
    a = load_dataset("isear", DATA_ROOT)
    b = load_dataset("isear", DATA_ROOT)
    c = load_dataset("isear", DATA_ROOT, split_seed=14)
    assert a.test.texts == b.test.texts
    assert a.test.texts != c.test.texts
    # dedup is on (text, label) before splitting, so no pair is in two splits (a text may be,
    # with another label: ISEAR has e.g. "Failing an examination." under several emotions)
    pairs = {s: set(zip(a.split(s).texts, a.split(s).labels.tolist())) for s in SPLITS}
    assert not pairs["train"] & pairs["test"] and not pairs["train"] & pairs["validation"]


def test_label_orders_of_partners():
    for name, info in DATASETS.items():
        partner = DATASETS[info.partner]
        assert partner.partner == name and {info.role, partner.role} == {"id", "ood"}
        assert info.labels == partner.labels  # an OOD dataset uses its ID partner's index order
    assert DATASETS["goemotions"].labels == ("anger", "disgust", "fear", "joy", "sadness", "surprise")
    assert DATASETS["empathetic_dialogues"].labels == (
        "anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
    assert DATASETS["isear"].labels == ("joy", "fear", "anger", "sadness", "disgust", "shame")
    assert all(isinstance(i, DatasetInfo) and i.source and i.files and i.description for i in DATASETS.values())


# ---- clear errors ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_missing_file_names_file_dataset_and_fetch(tmp_path, name):
    with pytest.raises(DataError) as err:
        check_files(name, tmp_path)
    msg = str(err.value)
    assert DATASETS[name].files[0] in msg and repr(name) in msg
    assert f"python -m orchestrator.data fetch {name}" in msg
    with pytest.raises(DataError, match="fetch"):
        load_dataset(name, tmp_path)


def test_unknown_dataset_lists_known():
    with pytest.raises(DataError, match="known: goemotions"):
        check_files("nope", "/nonexistent")


def _goemotions_tmp(tmp_path: Path, train_lines: list[str]) -> Path:
    folder = tmp_path / "goemotions"
    folder.mkdir()
    names = ["admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
             "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
             "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
             "remorse", "sadness", "surprise", "neutral"]
    (folder / "emotions.txt").write_text("\n".join(names))
    (folder / "train.tsv").write_text("\n".join(train_lines) + "\n")
    for f in ("dev.tsv", "test.tsv"):
        (folder / f).write_text("so fun\t1\tid9\n")
    return folder


def test_goemotions_mapping_and_malformed_row(tmp_path):
    folder = _goemotions_tmp(tmp_path, [
        "I love it\t18\ta", "I love it\t18\tb", "meh\t27\tc", "angry and sad\t2,25\td",
        "grateful and neutral\t15,27\te", "annoyed\t3,10\tf"])
    ds = load_dataset("goemotions", tmp_path)
    assert ds.train.texts == ("I love it", "grateful and neutral", "annoyed")
    assert [ds.labels[y] for y in ds.train.labels] == ["joy", "joy", "anger"]
    assert ds.drops == {"duplicate_train": 1, "neutral_only": 1, "multiple_ekman_labels": 1}
    (folder / "train.tsv").write_text("ok\t1\ta\nbroken row without tabs\n")
    with pytest.raises(DataError, match=r"train\.tsv:2: expected 3 TAB-separated fields"):
        load_dataset("goemotions", tmp_path)
    (folder / "train.tsv").write_text("ok\t1\ta\nbad id\t99\tb\n")
    with pytest.raises(DataError, match=r"train\.tsv:2: bad label id '99'"):
        load_dataset("goemotions", tmp_path)


def test_ssec_bad_label_names_line(tmp_path):
    folder = tmp_path / "ssec"
    folder.mkdir()
    good = "Anger\t---\t---\t---\t---\t---\t---\t---\ttweet one\n"
    (folder / "train-combined-0.66.csv").write_text(good * 3 + "Angry\t---\t---\t---\t---\t---\t---\t---\tx\n")
    (folder / "test-combined-0.66.csv").write_text(good)
    with pytest.raises(DataError, match=r"train-combined-0\.66\.csv:4: unknown label 'Angry'"):
        load_dataset("ssec", tmp_path)


# ---- cache -------------------------------------------------------------------------------


@real_data
def test_cache_second_load_does_not_reparse(tmp_path, monkeypatch):
    first = load_dataset("isear", DATA_ROOT, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("isear-*.json"))) == 1

    def boom(files, split_seed):
        raise AssertionError("re-parsed despite a cache entry")

    monkeypatch.setitem(DATASETS, "isear", dataclasses.replace(DATASETS["isear"], prepare=boom))
    second = load_dataset("isear", DATA_ROOT, cache_dir=tmp_path)
    assert second.train.texts == first.train.texts and second.drops == first.drops
    np.testing.assert_array_equal(second.test.labels, first.test.labels)
    with pytest.raises(AssertionError, match="re-parsed"):  # another split seed is another key
        load_dataset("isear", DATA_ROOT, split_seed=99, cache_dir=tmp_path)


@real_data
def test_cache_key_changes_with_file_and_settings(tmp_path):
    root = tmp_path / "data"
    (root / "isear").mkdir(parents=True)
    path = root / "isear" / "isear.csv"
    shutil.copyfile(DATA_ROOT / "isear" / "isear.csv", path)
    key = cache.cache_key("isear", [path], {"split_seed": 13})
    assert key == cache.cache_key("isear", [path], {"split_seed": 13})
    assert key != cache.cache_key("isear", [path], {"split_seed": 14})
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n")
    os.utime(path, ns=(1, 1))  # a new mtime as well, as any real edit has
    assert cache.cache_key("isear", [path], {"split_seed": 13}) != key
    ds = load_dataset("isear", root, cache_dir=tmp_path / "cache")
    assert cache.load(tmp_path / "cache", "isear", "0" * 64) is None
    assert len(ds.train) == 3838


# ---- user datasets -----------------------------------------------------------------------


def _user_rows(n_per_label: int = 20) -> list[tuple[str, str]]:
    return [(f"text {label} {i}, with a comma", label) for label in ("calm", "upset", "glad")
            for i in range(n_per_label)]


def test_user_csv_dataset(tmp_path):
    rows = _user_rows()
    lines = ["id,text,label"] + [f'{i},"{t}",{y}' for i, (t, y) in enumerate(rows)] + ['99,"text calm 0, with a comma",calm']
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n")
    spec = UserDatasetSpec(name="mine", path="mine.csv", labels=("calm", "upset", "glad"))
    check_files(spec, tmp_path)
    ds = load_dataset(spec, tmp_path, cache_dir=tmp_path / "cache")
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (36, 12, 12)
    assert ds.drops == {"duplicate_train": 1}
    assert label_counts(ds)["test"] == {"calm": 4, "upset": 4, "glad": 4}
    again = load_dataset(spec, tmp_path, cache_dir=tmp_path / "cache")
    assert again.train.texts == ds.train.texts


def test_user_jsonl_with_test_file_and_ood_partner(tmp_path):
    labels = DATASETS["isear"].labels
    rows = [{"sentence": f"s{i}", "y": labels[i % 6]} for i in range(60)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "test.jsonl").write_text(json.dumps({"sentence": "t", "y": 2}) + "\n")
    spec = UserDatasetSpec(name="mine_ood", path=str(tmp_path / "train.jsonl"), test_path=str(tmp_path / "test.jsonl"),
                           text_column="sentence", label_column="y", labels=labels, role="ood", partner="isear")
    ds = load_dataset(spec, tmp_path)
    assert len(ds.test) == 1 and ds.labels[ds.test.labels[0]] == "anger"
    assert len(ds.train) + len(ds.validation) == 60 and len(ds.validation) == 15  # 0.6 : 0.2 renormalised
    wrong = dataclasses.replace(spec, labels=tuple(reversed(labels)))
    with pytest.raises(DataError, match="labels must be"):
        load_dataset(wrong, tmp_path)


def test_user_errors_name_file_and_line(tmp_path):
    (tmp_path / "bad.csv").write_text("text,label\nhello,calm\nbye,angry\n")
    spec = UserDatasetSpec(name="bad", path="bad.csv", labels=("calm", "glad"))
    with pytest.raises(DataError, match=r"bad\.csv:3: unknown label 'angry'; allowed labels: calm, glad"):
        load_dataset(spec, tmp_path)
    (tmp_path / "cols.csv").write_text("sentence,label\nhello,calm\n")
    with pytest.raises(DataError, match=r"cols\.csv:1: no column 'text'"):
        load_dataset(dataclasses.replace(spec, path="cols.csv"), tmp_path)
    (tmp_path / "short.csv").write_text("text,label\nhello,calm\nonly one field\n")
    with pytest.raises(DataError, match=r"short\.csv:3: expected 2 fields"):
        load_dataset(dataclasses.replace(spec, path="short.csv"), tmp_path)
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "calm"}\n{not json\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        load_dataset(dataclasses.replace(spec, path="bad.jsonl"), tmp_path)
    with pytest.raises(DataError, match="not found"):
        check_files(dataclasses.replace(spec, path="missing.csv"), tmp_path)
    with pytest.raises(DataError, match="labels"):
        UserDatasetSpec(name="x", path="x.csv")


def test_user_hf_dataset_from_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = _user_rows(10)
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["calm", "upset", "glad"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": [t for t, _ in rows], "label": [y for _, y in rows]},
                                            features=features),
        "validation": datasets.Dataset.from_dict({"text": ["v"], "label": ["glad"]}, features=features),
    })
    dd.save_to_disk(str(tmp_path / "hf"))
    spec = UserDatasetSpec(name="hf", path=str(tmp_path / "hf"), labels=("glad", "calm", "upset"))
    ds = load_dataset(spec, tmp_path)
    assert ds.validation.texts == ("v",) and ds.labels[ds.validation.labels[0]] == "glad"
    assert len(ds.train) + len(ds.test) == 30 and len(ds.test) == 8  # 0.6 : 0.2 of 30, renormalised
    assert ds.labels[ds.train.labels[0]] in ("calm", "upset", "glad")


# ---- CLI ---------------------------------------------------------------------------------


@real_data
def test_stats_cli_json_shape(capsys):
    assert data_cli.main(["stats", "--data-root", str(DATA_ROOT), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(DATASETS)
    for name, splits in out.items():
        assert list(splits) == list(SPLITS)
        for split, counts in splits.items():
            assert list(counts) == list(DATASETS[name].labels)
            assert all(isinstance(v, int) for v in counts.values())
    assert sum(out["dailydialog"]["test"].values()) == 1373


@real_data
def test_stats_cli_table(capsys):
    assert data_cli.main(["stats", "ssec", "--data-root", str(DATA_ROOT)]) == 0
    out = capsys.readouterr().out
    assert "791 (paper 791)" in out and "empty_annotation_train 2" in out


def test_fetch_offline_fails_clearly(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert data_cli.main(["fetch", "ssec", "--data-root", str(tmp_path), "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert "ssec-aggregated-withtext.zip" in err and "offline" in err
    assert str(tmp_path / "ssec" / "train-combined-0.66.csv") in err
    assert not (tmp_path / "ssec" / "train-combined-0.66.csv").exists()


def test_split_type_checks():
    with pytest.raises(ValueError):
        Split(("a",), np.array([0, 1]))


def test_a_missing_data_root_skips_here_and_fails_under_ci(tmp_path, monkeypatch):
    """Under CI=true the half of the suite that needs data must not pass green by skipping."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="real datasets not found"):
        require_data_root(tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"real datasets not found at {tmp_path}.*CI=true"):
        require_data_root(tmp_path)
    (tmp_path / "isear").mkdir()
    assert require_data_root(tmp_path) == tmp_path
