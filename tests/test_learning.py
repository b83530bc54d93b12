"""The default encoder learns: the real packaged all-MiniLM-L6-v2 (mean pooling, the package's
weights) on real ISEAR rows, through `run_stage`, ends well above chance and above itself untrained.

Every other chain test uses a tiny random BERT, so a training loop that stopped learning, a
pooling that ignored the text or a packaged model that loaded its weights wrongly would pass
them all; this one fails.
"""
from __future__ import annotations

import pytest

from orchestrator.plan import build_plan
from orchestrator.spec import parse_spec
from trainables import calibration
from trainables.models import build_model
from trainables.stage import prepare_data, run_stage
from trainables.store import StageStore
from trainables.train import predict_logits

CHANCE_MACRO_F1 = 100 / 7  # ISEAR's seven classes, in percent


@pytest.mark.slow  # the real 22M-parameter MiniLM
def test_packaged_minilm_learns_isear(data_root, tmp_path):
    raw = {"name": "learning", "model": "packaged:all-MiniLM-L6-v2", "max_length": 48, "seeds": [0],
           "generations": 1, "methods": ["ce"], "datasets": [{"name": "isear", "ood": None}],
           "data": {"max_train": 160, "max_eval": 100, "split_seed": 13},
           "train": {"epochs": 2, "batch_size": 16, "lr": 3e-4, "group_by_length": True}}
    stage = build_plan(parse_spec(raw, data_root=str(data_root)))[0].stages[0]

    data = prepare_data(stage.data)
    untrained = build_model(stage.data.model, len(data.id_data.labels), seed=stage.seed * 1000 + stage.generation)
    before = calibration.calibration_report(predict_logits(untrained, data.test), data.test.labels)["macro_f1"]
    _, result = run_stage(stage, None, None, None, StageStore(tmp_path))
    after = result["metrics"]["test_macro_f1"]

    print(f"test macro F1: untrained {before:.1f}, trained {after:.1f}, chance {CHANCE_MACRO_F1:.1f}")
    assert after > 2 * CHANCE_MACRO_F1, (before, after)
    assert after > before + 10, (before, after)
