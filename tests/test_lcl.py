"""The Electra+LCL baseline (Suresh and Ong 2021): its loss by hand, its task, and its chain.

The loss is checked against a computation written out per anchor on a 6-sample batch whose
anchors have one positive, two positives and none; the task trains the weighting network
with the model and gives every anchor a second view (the synonym copy, or a dropout pass); the
synonym copy follows nlpaug's recipe (on a fake WordNet, and on the real one where installed);
the preset trains as its authors did (random batches, selection on validation accuracy); the
preset's chain runs on real ISEAR / Emotion-Stimulus with a tiny ELECTRA built in the test (its
own encoder and training settings, its own data map).
"""
from __future__ import annotations

import math
import random
import types

import numpy as np
import pytest
import torch

from orchestrator.plan import build_plan
from orchestrator.spec import SpecError, parse_spec
from tests.test_stage import run_chain, tiny_raw
from trainables.batching import encode
from trainables.methods import get_method
from trainables.methods.losses import LabelAwareContrastiveTask, label_aware_contrastive_loss
from trainables.methods.synonyms import SynonymCopier
from trainables.models import build_model, load_tokenizer
from trainables.store import StageStore
from trainables.train import TrainConfig, epoch_batches, train

# unit vectors, so s_ij = f_i . f_j / tau is easy to write down
FEATURES = [(1.0, 0.0), (0.0, 1.0), (0.6, 0.8), (0.8, -0.6), (-1.0, 0.0), (0.0, -1.0)]
LABELS = [0, 1, 0, 1, 0, 2]  # anchors 0, 2, 4: two positives; 1, 3: one; 5: none (left out)
WEIGHTS = [[0.5, 0.3, 0.2], [0.2, 0.6, 0.2], [0.4, 0.4, 0.2], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]]
TAU = 0.3


def lcl_by_hand() -> float:
    """loss_i = -(w_{i,y_i} / |P(i)|) sum_p (s_ip - log sum_{j != i} w_{i,y_j} exp(s_ij)), mean over
    anchors with a positive; plain Python, one anchor at a time."""
    losses = []
    for i, (fi, yi) in enumerate(zip(FEATURES, LABELS)):
        def s(j):
            return (fi[0] * FEATURES[j][0] + fi[1] * FEATURES[j][1]) / TAU
        log_d = math.log(sum(WEIGHTS[i][LABELS[j]] * math.exp(s(j)) for j in range(6) if j != i))
        positives = [p for p in range(6) if p != i and LABELS[p] == yi]
        if positives:
            losses.append(-WEIGHTS[i][yi] * sum(s(p) - log_d for p in positives) / len(positives))
    return sum(losses) / len(losses)


def test_lcl_against_a_hand_computation():
    # anchor 0 written out: s_0j = (0, 2, 8/3, -10/3, 0) for j = 1..5, labels (1, 0, 1, 0, 2)
    d0 = 0.3 * 1 + 0.5 * math.exp(2) + 0.3 * math.exp(8 / 3) + 0.5 * math.exp(-10 / 3) + 0.2 * 1
    anchor0 = -0.5 * ((2 - math.log(d0)) + (-10 / 3 - math.log(d0))) / 2
    assert anchor0 == pytest.approx(1.40512448972827)
    assert lcl_by_hand() == pytest.approx(1.4277862640435646)

    got = label_aware_contrastive_loss(torch.tensor(FEATURES), torch.tensor(LABELS), torch.tensor(WEIGHTS), TAU)
    assert got.item() == pytest.approx(lcl_by_hand(), rel=1e-5)


def test_lcl_with_no_positive_in_the_batch_is_zero_and_keeps_the_graph():
    features = torch.tensor(FEATURES[:3], requires_grad=True)
    loss = label_aware_contrastive_loss(features, torch.tensor([0, 1, 2]), torch.tensor(WEIGHTS[:3]), TAU)
    assert loss.item() == 0.0
    loss.backward()  # a batch of singletons must not break the step


def test_the_task_trains_the_weighting_network_with_the_model(tiny_electra):
    """CE + LCL reach the model, CE + LCL reach the weighting network, and the one loop steps both."""
    tokenizer = load_tokenizer(tiny_electra)
    texts = ["I was so happy today", "A dog bit me", "He lied to me", "We won the match",
             "I walked alone at night", "She told my secret"]
    data = encode(texts, [0, 1, 2, 0, 1, 2], tokenizer, 16)
    model, weighting = build_model(tiny_electra, 3, seed=0), build_model(tiny_electra, 3, seed=1)
    task = LabelAwareContrastiveTask(weighting, ce_weight=0.5, temperature=0.3)
    out = task(model, data, np.arange(6), 0.0, np.random.default_rng(0))
    assert out["logits"].shape == (6, 3) and out["lcl"].item() > 0
    parts = 0.5 * out["ce"] + 0.5 * out["lcl"] + 0.5 * out["weighting_ce"]
    assert out["loss"].item() == pytest.approx(parts.item(), rel=1e-6)
    out["loss"].backward()
    assert weighting.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0

    before = weighting.out_proj.weight.detach().clone()
    train(model, task, data, data, TrainConfig(epochs=1, batch_size=6, lr=1e-3, select="last"), seed=0)
    assert not torch.equal(before, weighting.out_proj.weight), "the loop did not optimise the weighting network"


def test_the_task_contrasts_unit_first_token_vectors_weighted_by_the_weighting_network(tiny_electra):
    """The task's LCL is the loss above on the model's L2-normalised pooled vectors, with the weighting
    network's softmax as pair weights; lambda 0.5 and tau 0.3 by default (the LCL code's config)."""
    from trainables.batching import collate

    labels = [0, 1, 2, 0, 1, 2]
    data = encode(["I was so happy today", "A dog bit me", "He lied to me", "We won the match",
                   "I walked alone at night", "She told my secret"], labels, load_tokenizer(tiny_electra), 16)
    model, weighting = build_model(tiny_electra, 3, seed=0).eval(), build_model(tiny_electra, 3, seed=1)
    task = LabelAwareContrastiveTask(weighting)
    assert (task.ce_weight, task.temperature) == (0.5, 0.3)
    with torch.no_grad():
        out = task(model, data, np.arange(6), 0.0, np.random.default_rng(0))
        ids, mask = collate(data, np.arange(6), torch.device("cpu"))
        unit = torch.nn.functional.normalize(model.pooled(ids, mask), dim=-1)
        expected = label_aware_contrastive_loss(unit, torch.tensor(labels), torch.softmax(weighting(ids, mask), -1), 0.3)
    assert not weighting.training  # the weighting network follows the model into evaluation
    assert out["lcl"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_rows_lcl_logits_do_not_depend_on_the_padding_of_its_batch(tiny_electra):
    """The encoder sees the attention mask: a short row's logits (from the vector the LCL
    contrasts) are the same alone and padded to a longer row's length."""
    data = encode(["Sad", "I walked alone at night and nobody came to look for me"], [0, 1],
                  load_tokenizer(tiny_electra), 32)
    assert len(data.ids[0]) < len(data.ids[1])
    model, weighting = build_model(tiny_electra, 2, seed=0).eval(), build_model(tiny_electra, 2, seed=1)
    task = LabelAwareContrastiveTask(weighting)
    with torch.no_grad():
        alone = task(model, data, np.array([0]), 0.0, np.random.default_rng(0))["logits"][0]
        padded = task(model, data, np.array([0, 1]), 0.0, np.random.default_rng(0))["logits"][0]
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-6)


def lcl_raw(model: str, electra: str, **method) -> dict:
    raw = tiny_raw(model, [])
    raw["methods"] = ["ce", {"name": "electra_lcl_tiny", "base": "electra_lcl", "model": electra, **method}]
    return raw


def test_electra_lcl_chain_on_real_data(tiny_model, tiny_electra, data_root, wordnet, tmp_path):
    """One generation on its own encoder and settings, its own data map, OOD fine-tuning, raw ECE."""
    spec = parse_spec(lcl_raw(tiny_model, tiny_electra, train={"epochs": 2}), data_root=str(data_root))
    ce, lcl = build_plan(spec)
    assert lcl.method.generations == 1 and not lcl.method.reports_scaled_ece
    assert lcl.data_map is None and len(lcl.stages) == 1  # no CE model trained only for a data map
    stage = lcl.stages[0]
    assert stage.data.model == tiny_electra and ce.stages[0].data.model == tiny_model
    # the preset's batch size 10 and lr 2e-5 over the sweep's 12 and 1e-3; the spec's epochs over the preset's 5
    assert (stage.train.batch_size, stage.train.lr, stage.train.epochs) == (10, 2e-5, 2)
    assert (ce.stages[0].train.batch_size, ce.stages[0].train.epochs) == (12, 1)

    store = StageStore(tmp_path / "stages")
    (result,) = run_chain(lcl, store)
    metrics = result["metrics"]
    for name in ("test_macro_f1", "test_ece", "ood_macro_f1", "ood_ft1_macro_f1", "ood_ft1_ece"):
        assert np.isfinite(metrics[name]), name
    assert metrics["train_lcl_positive_share"] == 1.0  # the synonym copy: every anchor had a positive
    assert len(result["history"]) == 2
    assert "gold_probs" in store.load_arrays(stage.key())  # it mapped its own run
    (again,) = run_chain(lcl, StageStore(tmp_path / "again"))  # same seed, same machine: same numbers
    assert again["metrics"] == {k: v for k, v in metrics.items()}


def test_a_methods_encoder_and_training_settings_are_in_its_stage_keys(tiny_model, tiny_electra, data_root, wordnet):
    """Two methods on different encoders never share a stage, nor on different settings."""
    same = parse_spec(lcl_raw(tiny_model, tiny_model), data_root=str(data_root))
    other = parse_spec(lcl_raw(tiny_model, tiny_electra), data_root=str(data_root))
    slower = parse_spec(lcl_raw(tiny_model, tiny_electra, train={"batch_size": 4}), data_root=str(data_root))
    keys = {p.stages[0].key() for spec in (same, other, slower) for p in build_plan(spec) if p.method.name != "ce"}
    assert len(keys) == 3
    assert get_method("electra_lcl").model == "google/electra-base-discriminator"


@pytest.mark.parametrize("method, message", [
    ({"model": "./no/such/folder"}, r"methods\[1\]\.model: \./no/such/folder is not a folder"),
    ({"train": {"batch_sise": 4}}, r"methods\[1\]\.train\.batch_sise: unknown key; did you mean 'batch_size'"),
    ({"train": {"epochs": 0}}, r"methods\[1\]\.train: epochs must be >= 1"),
    ({"train": [10, 5]}, r"methods\[1\]\.train: expected a mapping of training settings"),
    ({"teacher": {"lcl_temperature": 0.0}}, r"methods\[1\]: .*lcl_temperature must be > 0"),
    ({"teacher": {"lcl_second_view": "copy"}}, r"methods\[1\]: .*lcl_second_view must be one of synonym, dropout"),
])
def test_bad_method_settings_name_the_key(tiny_model, data_root, wordnet, method, message):
    raw = tiny_raw(tiny_model, [])
    raw["methods"] = ["ce", {"name": "lcl_bad", "base": "electra_lcl", **method}]
    with pytest.raises(SpecError, match=message):
        parse_spec(raw, data_root=str(data_root))


def test_the_readme_lcl_variant_parses_as_documented(tiny_model, data_root, wordnet):
    """The user guide's example of a method with its own encoder and settings means what it says."""
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[1] / "docs" / "guide.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "base: electra_lcl" in b)
    variant = next(m for m in yaml.safe_load(block)["methods"] if isinstance(m, dict) and m.get("base") == "electra_lcl")
    (plan,) = build_plan(parse_spec({**tiny_raw(tiny_model, []), "methods": [variant]}, data_root=str(data_root)))
    stage = plan.stages[0]
    assert stage.data.model == "packaged:all-MiniLM-L6-v2" and stage.teacher.kind == "lcl"
    assert (stage.train.epochs, stage.train.batch_size) == (3, 10)


# ----------------------------------------------------------------------------- the second view

TEXTS = ["I was so happy today", "A dog bit me", "He lied to me"]
COPIES = ["I was so glad today", "A hound bit me", "He lied to myself"]


@pytest.mark.parametrize("view", ["synonym", "dropout"])
def test_with_a_second_view_every_anchor_of_a_batch_has_a_positive(tiny_electra, view):
    """Three texts of three labels: alone, no anchor has a positive and LCL adds nothing; with the
    original's second view, each text's copy is its positive, so all 6 anchors contribute."""
    tokenizer = load_tokenizer(tiny_electra)
    data = encode(TEXTS, [0, 1, 2], tokenizer, 16)
    copies = encode(COPIES, [0, 1, 2], tokenizer, 16) if view == "synonym" else None
    model, weighting = build_model(tiny_electra, 3, seed=0), build_model(tiny_electra, 3, seed=1)
    alone = LabelAwareContrastiveTask(weighting)
    assert alone(model, data, np.arange(3), 0.0, np.random.default_rng(0))["lcl"].item() == 0.0
    assert alone.positive_share == 0.0
    task = LabelAwareContrastiveTask(weighting, second_view=view, copies=copies)
    out = task(model, data, np.arange(3), 0.0, np.random.default_rng(0))
    assert out["lcl"].item() > 0 and out["logits"].shape == (3, 3)
    assert (task.anchors, task.positive_share) == (6, 1.0)


def test_the_synonym_view_contrasts_each_row_with_its_own_copy(tiny_electra):
    """The step's sequences are the rows, then the copies of those rows (not of others), through both
    networks; CE runs on all of them, as the original's 2b-sequence step."""
    from trainables.batching import Encoded, collate

    tokenizer = load_tokenizer(tiny_electra)
    data, copies = encode(TEXTS, [0, 1, 2], tokenizer, 16), encode(COPIES, [0, 1, 2], tokenizer, 16)
    model, weighting = build_model(tiny_electra, 3, seed=0).eval(), build_model(tiny_electra, 3, seed=1)
    task = LabelAwareContrastiveTask(weighting, second_view="synonym", copies=copies)
    rows = np.array([2, 0])
    with torch.no_grad():
        out = task(model, data, rows, 0.0, np.random.default_rng(0))
        both = Encoded(tuple(data.ids[i] for i in rows) + tuple(copies.ids[i] for i in rows),
                       np.array([2, 0, 2, 0]), data.pad_id)
        ids, mask = collate(both, np.arange(4), torch.device("cpu"))
        labels = torch.tensor([2, 0, 2, 0])
        unit = torch.nn.functional.normalize(model.pooled(ids, mask), dim=-1)
        expected = label_aware_contrastive_loss(unit, labels, torch.softmax(weighting(ids, mask), -1), 0.3)
        ce = torch.nn.functional.cross_entropy(model(ids, mask), labels)
    assert out["lcl"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert out["ce"].item() == pytest.approx(ce.item(), rel=1e-5)
    with pytest.raises(ValueError, match="needs `copies`"):
        LabelAwareContrastiveTask(weighting, second_view="synonym")


class FakeWordNet:
    """synsets(word) -> objects whose lemmas() have a name(), as NLTK's; a fixed little table."""

    TABLE = {"happy": [["happy", "glad"], ["felicitous"]], "dog": [["dog", "hound"]], "ran": [["run", "scat"]],
             "the": [["the_article"]], "word": [["word", "give-and-take"]], "good": [["good", "full_of_life"]]}

    def synsets(self, word):
        return [types.SimpleNamespace(lemmas=lambda names=names: [types.SimpleNamespace(name=lambda n=n: n)
                                                                   for n in names])
                for names in self.TABLE.get(word, [])]


def test_the_synonym_copy_replaces_30_percent_of_the_tokens_by_other_lemmas():
    """nlpaug's SynonymAug at its defaults: ceil(0.3 * 5 tokens) = 2 of the 3 pickable words (never
    a determiner or punctuation), each by a lemma that is not the word, capitalised like it, `_`
    and `-` written as spaces; at most 10 replaced; the text's spacing kept; seeded."""
    copier = SynonymCopier(FakeWordNet())
    options = {"happy": {"glad", "felicitous"}, "dog": {"hound"}, "ran": {"run", "scat"}}
    seen = set()
    for seed in range(30):
        words = copier.copy("The happy dog ran!", random.Random(seed)).split(" ")
        assert words[0] == "The" and words[-1][-1] == "!" and len(words) == 4
        kept = [w for w, (word, opts) in zip(words[1:], options.items()) if w.rstrip("!") == word]
        changed = [w.rstrip("!") for w, opts in zip(words[1:], options.values()) if w.rstrip("!") in opts]
        assert (len(kept), len(changed)) == (1, 2), words
        seen.add(" ".join(words))
    assert len(seen) > 3  # the draw varies with the seed
    assert copier.copy("Happy.", random.Random(0)) in ("Glad.", "Felicitous.")
    assert copier.copy("good  !", random.Random(0)) == "full of life  !"
    assert copier.copy(" ".join(["word"] * 40), random.Random(0)).count("give and take") == 10
    texts = ["The happy dog ran!"] * 3
    assert copier.copies(texts, seed=5) == copier.copies(texts, seed=5)


def test_the_synonym_copy_from_real_wordnet_is_the_same_for_a_seed(wordnet):
    copier = SynonymCopier()
    assert "glad" in copier.synonyms("happy") and "happy" not in copier.synonyms("happy")
    assert "run" in copier.synonyms("ran")  # morphy finds the base form, as WordNet's synsets() does
    texts = ["I was so happy when my dog came home.", "He lied to me and I felt betrayed."]
    first = copier.copies(texts, seed=3)
    assert first == SynonymCopier().copies(texts, seed=3) and first != texts


def test_a_missing_wordnet_stops_the_spec_saying_how_to_install_it(tiny_model, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOCAL_WORDNET", str(tmp_path))
    with pytest.raises(SpecError, match=r"lcl_second_view synonym: WordNet 3.0 not found .*apt-get install wordnet-base"):
        parse_spec(lcl_raw(tiny_model, tiny_model), data_root=str(data_root))
    # a variant that needs no WordNet parses
    parse_spec(lcl_raw(tiny_model, tiny_model, teacher={"lcl_second_view": "dropout"}), data_root=str(data_root))


def test_the_electra_lcl_row_trains_as_its_authors_did(tiny_model, data_root, wordnet):
    """Over a sweep that groups batches by length (full_paper.yaml): random batches, the epoch of
    the best validation accuracy, the synonym copy. Its batches are as spread in length as a random
    draw; the CE row's, grouped by length, are not."""
    raw = lcl_raw(tiny_model, tiny_model)
    raw["train"]["group_by_length"] = True
    plans = build_plan(parse_spec(raw, data_root=str(data_root)))
    ce, lcl = (p.stages[0] for p in plans)
    assert (lcl.train.group_by_length, lcl.train.select, lcl.teacher.lcl_second_view) == (False, "val_accuracy", "synonym")
    assert (ce.train.group_by_length, ce.train.select) == (True, "val_macro_f1")
    from orchestrator.kinds import kind_of  # the trial's MLflow params say so too

    params = kind_of(plans[1]).planned_run(plans[1], "t").params
    assert (params["group_by_length"], params["select"], params["lcl_second_view"]) == (False, "val_accuracy", "synonym")
    lengths = np.arange(2000)  # every row its own length: a batch's spread says how it was drawn

    def median_spread(cfg):
        batches = epoch_batches(lengths, lengths, cfg.batch_size, cfg.group_by_length, np.random.default_rng(0))
        return np.median([np.ptp(lengths[b]) for b in batches])

    assert median_spread(lcl.train) > 1000 and median_spread(ce.train) < 100
