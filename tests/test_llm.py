"""LLM baselines without a model: the A.5 prompts, the answer parser on realistic answers, the
unusable-answer rule in the scores, the top-1 ECE, and the spec/plan of LLM rows."""
from __future__ import annotations

import numpy as np
import pytest

from trainables import calibration
from trainables.data.base import Split
from trainables.llm.answers import BAD_CONFIDENCE, NO_OBJECT, NO_PREDICTION, UNKNOWN_LABEL, parse_answer
from trainables.llm.prompts import draw_examples, few_shot_prompt, zero_shot_prompt
from trainables.llm.score import score_answers

LABELS = ["joy", "fear", "anger", "sadness", "disgust", "shame"]


@pytest.mark.parametrize("answer, label, confidence", [
    ("{'prediction': 'joy', 'confidence': 0.9}", "joy", 0.9),  # single quotes, as the prompt shows it
    ('{"prediction": "fear", "confidence": 0.75}', "fear", 0.75),  # real JSON
    ("Sure! Here is my answer:\n```json\n{\"prediction\": \"Anger\", \"confidence\": 0.8}\n```\nThe text "
     "expresses frustration.", "anger", 0.8),  # prose and a code fence around it, a label in other case
    ("{'prediction': SADNESS, 'confidence': 0.6}", "sadness", 0.6),  # unquoted value, as A.5's zero-shot format
    ("{'prediction': 'disgust', 'confidence': '0.85'}", "disgust", 0.85),  # confidence as a string
    ("{'prediction': 'shame', 'confidence': 85}", "shame", 0.85),  # a percentage
    ("{'prediction': 'joy.', 'confidence': '70%'}", "joy", 0.7),
    ("{'prediction': 'fear', 'confidence': 1}", "fear", 1.0),
    ('{"reasoning": "none"} then {"prediction": "joy", "confidence": 0.4}', "joy", 0.4),  # first object with a prediction
])
def test_usable_answers_are_read(answer, label, confidence):
    parsed = parse_answer(answer, LABELS)
    assert parsed.usable and LABELS[parsed.label] == label and parsed.confidence == pytest.approx(confidence)


@pytest.mark.parametrize("answer, problem", [
    ("I think the emotion is joy.", NO_OBJECT),
    ("", NO_OBJECT),
    ('{"emotion": "joy", "confidence": 0.9}', NO_PREDICTION),
    ("{'prediction': 'happiness', 'confidence': 0.9}", UNKNOWN_LABEL),  # not one of the labels
    ("{'prediction': 'joy or fear', 'confidence': 0.9}", UNKNOWN_LABEL),
    ("{'prediction': ['joy'], 'confidence': 0.9}", UNKNOWN_LABEL),
    ("{'prediction': 'joy', 'confidence': ", NO_OBJECT),  # cut off by max_new_tokens
    ("{'prediction': '2. joy', 'confidence': 0.9}", UNKNOWN_LABEL),  # joy is category 1 of the prompt's list
])
def test_unusable_answers_say_why(answer, problem):
    parsed = parse_answer(answer, LABELS)
    assert not parsed.usable and parsed.problem == problem and parsed.label is None and parsed.confidence is None


@pytest.mark.parametrize("answer", [
    "{'prediction': 'joy', 'confidence': 'high'}",
    "{'prediction': 'joy', 'confidence': -0.2}",
    "{'prediction': 'joy', 'confidence': 250}",  # outside [0, 1] and no percentage
    "{'prediction': 'joy', 'confidence': true}",
    "{'prediction': 'joy'}",
])
def test_a_label_without_a_readable_confidence_keeps_its_label(answer):
    """The prediction is the model's; only the confidence is missing (scored 1/K, counted apart)."""
    parsed = parse_answer(answer, LABELS)
    assert (parsed.label, parsed.confidence, parsed.problem) == (0, None, BAD_CONFIDENCE)


@pytest.mark.parametrize("prediction, label", [
    ("4. sadness", 3), ("4) sadness", 3), ("1.joy", 0), ("6: Shame", 5), ("sadness", 3),
])
def test_a_label_written_as_the_few_shot_prompt_numbers_it_is_read(prediction, label):
    assert parse_answer(f"{{'prediction': '{prediction}', 'confidence': 0.7}}", LABELS).label == label


@pytest.mark.parametrize("value, confidence", [
    (0, 0.0), (1, 1.0), ("1.0", 1.0), (0.999, 0.999), (2, 0.02), (85, 0.85), ("85", 0.85), (100, 1.0), ("100.0", 1.0),
    ("70%", 0.7), ("1.5%", 0.015), ("85.5%", 0.855),
    (1.5, None), (1.0001, None), (85.5, None), (100.5, None), (101, None), (-0.2, None), ("150%", None), ("high", None),
])
def test_a_confidence_above_1_is_a_percentage_only_when_whole_or_written_with_a_percent_sign(value, confidence):
    """1.5 is no more likely 1.5% than a slip for 0.15: unreadable, where 85 and 85.5% are plainly percentages."""
    from trainables.llm.answers import read_confidence

    got = read_confidence(value)
    assert got == (None if confidence is None else pytest.approx(confidence))


def test_labels_with_underscores_match_their_spoken_form():
    assert parse_answer("{'prediction': 'Very Happy', 'confidence': 0.5}", ["sad", "very_happy"]).label == 1


def test_zero_shot_prompt_is_the_appendix_text():
    prompt = zero_shot_prompt("I passed my exam {short_text}.", LABELS)
    assert prompt == (
        "You will receive a short text. Your task is to classify the emotion expressed in it into one of the following "
        "categories: joy, fear, anger, sadness, disgust, shame.\n"
        "You must also provide a confidence score between 0 and 1 to indicate how sure you are in the categorization. "
        "Answer only with a JSON string that has the following format: {'prediction': emotion, 'confidence': float}\n"
        "The text to classify is 'I passed my exam {short_text}.'.")


def test_few_shot_prompt_has_two_examples_per_class_drawn_by_the_seed():
    labels = np.repeat(np.arange(len(LABELS)), 5)
    train = Split(tuple(f"text {i}" for i in range(len(labels))), labels)
    draw = draw_examples(train, LABELS, 2, seed=0)
    assert [name for _, name in draw] == [name for name in LABELS for _ in range(2)]
    assert all(int(t.split()[1]) // 5 == LABELS.index(name) for t, name in draw)  # each example has its own label
    assert draw == draw_examples(train, LABELS, 2, seed=0)
    assert draw != draw_examples(train, LABELS, 2, seed=1)  # another prompt
    prompt = few_shot_prompt("My dog died.", LABELS, draw)
    assert prompt.startswith("Given the following text: My dog died.\nClassify the text into one of the following "
                             "categories depending on the emotion expressed by the text:\n1. joy; 2. fear; 3. anger; "
                             "4. sadness; 5. disgust; 6. shame\nTwo example classifications for each emotion are shown "
                             f"below.\n{draw[0][0]}\nEmotion: joy\n{draw[1][0]}\nEmotion: joy\n{draw[2][0]}\nEmotion: fear\n")
    assert prompt.endswith("Your response must be a JSON string that has the following format: "
                           "{'prediction': 'emotion', 'confidence': float}")
    with pytest.raises(ValueError, match="'shame' has 1 training example"):
        draw_examples(Split(train.texts[:26], labels[:26]), LABELS, 2, seed=0)


def test_top1_ece_equals_the_ece_of_the_same_probabilities():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=200)
    labels = rng.integers(0, 4, size=200)
    correct = (probs.argmax(1) == labels).astype(float)
    for binning in ("equal_width", "equal_mass"):
        assert calibration.top1_ece(probs.max(1), correct, 10, binning) == pytest.approx(
            calibration.expected_calibration_error(probs, labels, 10, binning), abs=1e-12)
    with pytest.raises(calibration.CalibrationInputError, match="in \\[0, 1\\]"):
        calibration.top1_ece([1.2], [1])


def test_unusable_answers_count_as_wrong_with_a_uniform_confidence():
    labels = ["a", "b"]
    answers = [parse_answer(a, labels) for a in ("{'prediction': 'a', 'confidence': 0.9}",
                                                 "{'prediction': 'b', 'confidence': 0.8}", "no idea", "{'prediction': 'c'}")]
    gold = np.array([0, 0, 1, 1])
    m = score_answers("test", answers, gold, num_labels=2, n_bins=10)
    assert m["test_answers"] == 4 and m["test_unusable"] == 2 and m["test_bad_confidence"] == 0
    assert m["test_unusable_no_object"] == 1 and m["test_unusable_unknown_label"] == 1
    assert m["test_accuracy"] == pytest.approx(25.0)  # only the first answer is right
    # class a: tp 1, fp 0, fn 1 -> F1 2/3; class b: tp 0 -> 0; the unusable rows are misses of class b,
    # not a third class (that would make it (2/3 + 0 + 0) / 3)
    assert m["test_macro_f1"] == pytest.approx(100 / 3)
    # bins: 0.9 right, 0.8 wrong, 0.5 and 0.5 wrong (confidence 1/K) -> (0.1 + 0.8 + 2 * 0.5) / 4
    assert m["test_ece"] == pytest.approx(100 * (0.1 + 0.8 + 1.0) / 4)


def test_a_label_without_a_confidence_is_scored_as_its_label_with_a_uniform_confidence():
    labels = ["a", "b"]
    answers = [parse_answer(a, labels) for a in ("{'prediction': 'a', 'confidence': 'high'}",
                                                 "{'prediction': 'b', 'confidence': 0.8}")]
    m = score_answers("test", answers, np.array([0, 0]), num_labels=2, n_bins=10)
    assert (m["test_unusable"], m["test_bad_confidence"]) == (0, 1)
    assert m["test_accuracy"] == pytest.approx(50.0)  # the first answer's label counts
    assert m["test_ece"] == pytest.approx(100 * (0.5 + 0.8) / 2)  # 0.5 right (1/K), 0.8 wrong


def _llm_spec(data_root, methods, seeds=(0, 1, 2)):
    from orchestrator.spec import parse_spec

    return parse_spec({"name": "llm", "seeds": list(seeds), "datasets": ["isear"], "methods": methods},
                      data_root=str(data_root))


def test_llm_rows_plan_one_trial_per_prompt(data_root, tmp_path):
    from orchestrator.plan import build_plan

    (tmp_path / "my-llama").mkdir()
    (tmp_path / "my-llama" / "config.json").write_text("{}")
    (tmp_path / "my-llama" / "chat_template.jinja").write_text("{{ messages }}")
    spec = _llm_spec(data_root, ["llama3_8b_zs", "gemma2_9b_fs", {"name": "mine_fs", "base": "llama3_8b_fs",
                                                                  "model": str(tmp_path / "my-llama"), "prompts": 2}])
    trials = build_plan(spec)
    assert [t.key for t in trials] == ["isear-llama3_8b_zs-seed0", "isear-gemma2_9b_fs-seed0", "isear-gemma2_9b_fs-seed1",
                                       "isear-gemma2_9b_fs-seed2", "isear-mine_fs-seed0", "isear-mine_fs-seed1"]
    stages = {t.key: t.stages[0] for t in trials}
    assert stages["isear-mine_fs-seed0"].data.model == str(tmp_path / "my-llama")
    assert stages["isear-gemma2_9b_fs-seed0"].data.model == "google/gemma-2-9b-it"
    assert stages["isear-gemma2_9b_fs-seed0"].data.ood_dataset == "emotion_stimulus"
    assert len({s.key() for s in stages.values()}) == len(stages)  # every prompt a stage of its own
    # greedy zero-shot does not depend on the seed: its stage is the same under any seed
    other = build_plan(_llm_spec(data_root, ["llama3_8b_zs"], seeds=(7,)))[0]
    assert other.key == "isear-llama3_8b_zs-seed7" and other.stages[0].key() == stages["isear-llama3_8b_zs-seed0"].key()


def test_a_local_llm_folder_without_a_chat_template_is_refused_before_anything_runs(data_root, tiny_model, tmp_path):
    from orchestrator.spec import SpecError

    # the tiny BERT folder: a model, but its (MiniLM) tokenizer has no chat template
    with pytest.raises(SpecError, match=r"methods\[0\].model: .* has no chat template .* instruction-tuned"):
        _llm_spec(data_root, [{"name": "gemma2_9b_zs", "model": tiny_model}])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"methods\[0\].model: .*empty has no config.json"):
        _llm_spec(data_root, [{"name": "gemma2_9b_zs", "model": str(tmp_path / "empty")}])


@pytest.mark.parametrize("methods, seeds, message", [
    (["llama3_8b_fs"], (0,), r"methods\[0\]: llama3_8b_fs has 3 few-shot prompts, one per seed, but the spec has 1"),
    ([{"base": "llama3_8b_zs", "name": "z", "temperature": 0.7}], (0,), r"methods\[0\]: unknown key\(s\) \['temperature'\]"),
    ([{"base": "llama3_8b_zs", "name": "z", "prompts": 3}], (0, 1, 2), r"a zero-shot row has one prompt"),
    ([{"base": "gemma2_9b_zs", "name": "z", "model": "./nowhere"}], (0,), r"methods\[0\].model: ./nowhere is not a folder"),
    ([{"base": "gemma2_9b_zs", "name": "z", "max_new_tokens": "many"}], (0,), r"methods\[0\].max_new_tokens: expected an integer"),
])
def test_bad_llm_rows_are_refused_naming_the_key(data_root, methods, seeds, message):
    from orchestrator.spec import SpecError

    with pytest.raises(SpecError, match=message):
        _llm_spec(data_root, methods, seeds)


def test_few_shot_examples_come_from_the_id_training_split_unless_the_row_says_the_ood_pool(data_root):
    from orchestrator.plan import build_plan
    from orchestrator.spec import SpecError

    (default,) = [p for p in build_plan(_llm_spec(data_root, ["llama3_8b_fs"])) if p.seed == 0]
    assert default.stages[0].llm.examples_from == "id_train"
    variant = [p for p in build_plan(_llm_spec(data_root, [{"name": "fs_ood", "base": "llama3_8b_fs",
                                                             "examples_from": "ood_pool"}])) if p.seed == 0][0]
    assert variant.stages[0].llm.examples_from == "ood_pool" and variant.stages[0].key() != default.stages[0].key()
    with pytest.raises(SpecError, match="a zero-shot row has no examples"):
        _llm_spec(data_root, [{"name": "zs_ood", "base": "llama3_8b_zs", "examples_from": "ood_pool"}])
    with pytest.raises(SpecError, match="examples_from must be one of id_train, ood_pool"):
        _llm_spec(data_root, [{"name": "fs_bad", "base": "llama3_8b_fs", "examples_from": "ood_test"}])
