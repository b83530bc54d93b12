"""Every method preset, the losses and the partner search, on a tiny encoder and real text."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainables.batching import encode
from trainables.cartography import DataMap
from trainables.methods import PRESETS, get_method, list_methods
from trainables.methods.losses import CrossEntropyTask, DistillTask, MixupTask
from trainables.methods.partners import (OtherSubsetPartners, RandomPartners, SaliencyPartners, saliency,
                                         similarity_partners)
from trainables.methods.registry import DistillConfig, MethodConfig, MixupConfig
from trainables.models import build_model, load_tokenizer
from trainables.train import TrainConfig, predict_logits, train

TEXTS = ["I was so happy to see my family again", "A dog bit me and I was afraid", "He lied to me and I was furious",
         "My grandmother died last winter", "The food was rotten and smelled awful", "I failed the exam in front of all",
         "We won the match at the last minute", "I walked alone at night in a dark street"]
LABELS = [0, 1, 2, 3, 4, 5, 0, 1]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    tok = load_tokenizer(tiny_model)
    data = encode(TEXTS, LABELS, tok, 32)
    return tiny_model, data


def test_every_preset_is_valid_and_listed():
    assert len(list_methods()) == len(PRESETS) >= 17
    for name in list_methods():
        method = get_method(name).with_default_generations(3)
        method.validate()
        assert method.generations == (1 if method.distill.kind == "none" else (2 if name.startswith("1g") else 3))


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="known methods: .*sim_mixup_csd"):
        get_method("sim_mixup_cds")


@pytest.mark.parametrize("bad, message", [
    (MethodConfig("x", "", distill=DistillConfig("csd", generations=1)), "no student"),
    (MethodConfig("x", "", distill=DistillConfig("none", generations=3)), "use sd or csd"),
    (MethodConfig("x", "", teacher=MixupConfig("sim", layer="input")), "features or logits"),
    (MethodConfig("x", "", teacher=MixupConfig("cutmix")), "teacher.kind"),
])
def test_options_that_do_not_fit_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        bad.validate()


def _task_for(recipe: MixupConfig, n: int, rng):
    dmap = DataMap(rng.random((2, n)).astype(np.float32), rng.random((2, n)) > 0.5)
    easy, amb = dmap.regions(recipe.ea_fraction)
    if recipe.kind == "none":
        return CrossEntropyTask()
    if recipe.kind == "rand":
        return MixupTask(RandomPartners(np.arange(n)), recipe.alpha, recipe.main_weight, recipe.layer)
    if recipe.kind == "ea":
        return MixupTask(OtherSubsetPartners(easy, amb, n), recipe.alpha, recipe.main_weight, recipe.layer)
    return MixupTask(SaliencyPartners(easy, amb, rng.random((n, 6)), recipe.scope), recipe.alpha, recipe.main_weight,
                     recipe.layer)


@pytest.mark.parametrize("name", list_methods())
def test_every_preset_takes_a_training_step(tiny, name):
    """One optimisation step of the preset's teacher recipe and, if it distils, its student loss."""
    model_path, data = tiny
    method = get_method(name).with_default_generations(2)
    rng = np.random.default_rng(0)
    model = build_model(model_path, 6, seed=0)
    before = model.out_proj.weight.detach().clone()
    tasks = [_task_for(method.teacher, len(data), rng)]
    if method.distill.kind != "none":
        tasks.append(DistillTask(rng.normal(size=(len(data), 6)), 2.0, method.distill.scale_student))
    for task in tasks:
        out = task(model, data, np.arange(4), 0.5, rng)
        assert out["logits"].shape == (4, 6) and torch.isfinite(out["loss"])
        out["loss"].backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(before, model.out_proj.weight)


def test_similarity_partners_match_brute_force():
    rng = np.random.default_rng(1)
    table = torch.from_numpy(rng.random((200, 6)).astype(np.float32))
    queries, candidates = torch.arange(0, 100), torch.arange(100, 200)
    best, worst = similarity_partners(table, queries, candidates, chunk=7)
    for q in range(100):
        sims = [F.cosine_similarity(table[q], table[c], dim=0).item() for c in range(100, 200)]
        assert best[q].item() == 100 + int(np.argmax(sims))
        assert worst[q].item() == 100 + int(np.argmin(sims))


def test_sim_partners_come_from_the_other_half_and_saliency_refreshes():
    rng = np.random.default_rng(2)
    easy, amb = np.arange(0, 10), np.arange(10, 20)
    partners = SaliencyPartners(easy, amb, rng.random((20, 4)))
    picked = partners.pick(np.array([0, 5, 12, 19]), rng)
    assert set(picked[:2].ravel()) <= set(amb) and set(picked[2:].ravel()) <= set(easy)
    logits = torch.tensor([[5.0, 0, 0, 0]])
    partners.refresh(np.array([3]), logits, torch.tensor([0]))
    expected = (torch.softmax(logits, -1) - F.one_hot(torch.tensor([0]), 4)).abs()
    assert torch.allclose(partners.table[3], expected[0])


def test_saliency_is_the_logit_gradient_of_ce():
    z = torch.randn(5, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0])
    F.cross_entropy(z, y, reduction="sum").backward()
    assert torch.allclose(saliency(z.detach(), y, signed=True), z.grad, atol=1e-6)


def test_distill_loss_follows_method_md():
    """(1 - lam) CE + lam T^2 KL(softmax(t/T) || softmax(s)), lam = 1 - progress, student unscaled."""
    s, t, y, T = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 2, 1]), 2.5

    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, ids, mask):
            return s + 0 * self.p

    data = encode(["a", "b", "c"], y.numpy(), load_tokenizer_stub(), 8)
    out = DistillTask(t.numpy(), T)(Fixed(), data, np.arange(3), 0.25, np.random.default_rng(0))
    pt = torch.softmax(t / T, -1)
    kl = (pt * (pt.log() - torch.log_softmax(s, -1))).sum(-1).mean()
    lam = 0.75
    expected = (1 - lam) * F.cross_entropy(s, y) + lam * T * T * kl
    assert math.isclose(out["loss"].item(), expected.item(), rel_tol=1e-5)


def load_tokenizer_stub():
    class Tok:
        pad_token_id = 0

        def __call__(self, texts, **kw):
            return {"input_ids": [[1, 2] for _ in texts]}

    return Tok()


def test_data_map_regions():
    probs = np.array([[0.9, 0.1, 0.5, 0.8, 0.2, 0.6], [0.9, 0.3, 0.1, 0.8, 0.2, 0.2]], dtype=np.float32)
    dmap = DataMap(probs, probs > 0.5)
    easy, amb = dmap.regions(1.0)
    # confidence (mean over epochs): .9 .2 .3 .8 .2 .4 -> the top half is easy
    assert list(easy) == [0, 3, 5] and list(amb) == [1, 2, 4]
    easy66, amb66 = dmap.regions(0.66)
    # 33% most confident, then the 33% most variable of the rest (std .1 .2 0 .2 for rows 1 2 4 5)
    assert list(easy66) == [0, 3] and set(amb66) == {2, 5}


def test_training_is_deterministic_and_learns(tiny):
    model_path, data = tiny
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3)
    runs = []
    for _ in range(2):
        model = build_model(model_path, 6, seed=3)
        fit = train(model, CrossEntropyTask(), data, data, cfg, seed=3, record_dynamics=True)
        runs.append(predict_logits(fit.model, data))
        assert fit.gold_probs.shape == (3, len(data))
    np.testing.assert_array_equal(runs[0], runs[1])
