"""Every method preset, the losses and the partner search, through the production code.

The teacher recipe of each preset comes from `stage._teacher_task` on a data map built by hand;
the MixUp and distillation losses are checked against numpy computations on a model small
enough to write down (tests/tiny_net.py); the presets also take a real step on a tiny encoder.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import from_object_store, require_wordnet
from tests.tiny_net import TokenTableNet, log_softmax, token_rows
from trainables.batching import Encoded, encode
from trainables.calibration import classification_metrics
from trainables.cartography import DataMap
from trainables.methods import PRESETS, get_method, list_methods
from trainables.methods.losses import CrossEntropyTask, DistillTask, LabelAwareContrastiveTask, MixupTask
from trainables.methods.partners import SaliencyPartners, _search_numpy, _search_torch, saliency, similarity_partners
from trainables.methods.registry import DistillConfig, MethodConfig, MixupConfig
from trainables.models import build_model, load_tokenizer
from trainables.stage import DataConfig, PreparedData, StageSpec, _teacher_task
from trainables.train import TrainConfig, predict_logits, train

TEXTS = ["I was so happy to see my family again", "A dog bit me and I was afraid", "He lied to me and I was furious",
         "My grandmother died last winter", "The food was rotten and smelled awful", "I failed the exam in front of all",
         "We won the match at the last minute", "I walked alone at night in a dark street",
         "She told everyone my secret", "My best friend moved far away", "I saw a man spit on the floor",
         "I forgot my lines on stage"]
LABELS = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
TRAIN_ROWS = token_rows(LABELS)  # row i is token i, for TokenTableNet

# A data map built by hand for the 12 rows: two epochs of p(gold) = CONF +- VAR, so row i has
# confidence (mean) CONF[i] and variability (population std) VAR[i].
CONF = np.array([0.90, 0.20, 0.50, 0.80, 0.30, 0.60, 0.95, 0.10, 0.40, 0.70, 0.35, 0.55])
VAR = np.array([0.05, 0.10, 0.30, 0.02, 0.25, 0.15, 0.01, 0.05, 0.20, 0.29, 0.28, 0.12])
LAST_LOGITS = np.random.default_rng(5).normal(size=(12, 6)) * 2
DATA_MAP = {"gold_probs": np.stack([CONF + VAR, CONF - VAR]).astype(np.float32),
            "correct": np.stack([CONF + VAR, CONF - VAR]) > 0.5, "last_logits": LAST_LOGITS.astype(np.float32)}
# by confidence, descending: 6 0 3 9 5 11 | 2 8 10 4 1 7
HALF_EASY, HALF_AMBIGUOUS = [0, 3, 5, 6, 9, 11], [1, 2, 4, 7, 8, 10]
# 66%: the 4 (33% of 12) most confident are easy; of the other 8, the 4 most variable are ambiguous
# (row 9 is more variable than row 8, but it is easy already)
EA66_EASY, EA66_AMBIGUOUS = [0, 3, 6, 9], [2, 4, 8, 10]
# which teacher each preset trains (docs/method.md, The methods of the tables)
PRESET_RECIPE = {
    "ce": "ce", "ce_ts": "ce", "sd": "ce", "csd": "ce", "csd_scaled_student": "ce",
    "rand_m_mixup": "rand", "rand_m_mixup_ts": "rand", "rand_mixup_csd": "rand",
    "ea66_m_mixup": "ea66", "ea66_m_mixup_ts": "ea66", "1g_sd_ea66": "ea66", "1g_csd_ea66": "ea66",
    "ea_m_mixup": "ea", "ea_mixup_csd": "ea",
    "sim_m_mixup": "sim", "sim_mixup_csd": "sim", "sim_mixup_csd_scaled_student": "sim",
    "electra_lcl": "lcl",
}
TABLE = np.random.default_rng(6).normal(size=(12, 5)) * 1.5  # TokenTableNet's features, 5 wide
HEAD_W, HEAD_B = np.random.default_rng(7).normal(size=(6, 5)), np.random.default_rng(8).normal(size=6) * 0.5


@pytest.fixture(scope="module")
def tiny(tiny_model):
    tok = load_tokenizer(tiny_model)
    data = encode(TEXTS, LABELS, tok, 32)
    return tiny_model, data


def test_every_preset_is_valid_and_listed():
    assert len(list_methods()) == len(PRESETS) >= 17 and set(PRESET_RECIPE) == set(list_methods())
    for name in list_methods():
        method = get_method(name).with_default_generations(3)
        method.validate()
        assert method.name == name and method.description  # run names, tags and report rows use them
        assert method.generations == (1 if method.distill.kind == "none" else (2 if name.startswith("1g") else 3))


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="known methods: .*sim_mixup_csd"):
        get_method("sim_mixup_cds")


@pytest.mark.parametrize("bad, message", [
    (MethodConfig("x", "", distill=DistillConfig("csd", generations=1)), "no student"),
    (MethodConfig("x", "", distill=DistillConfig("none", generations=3)), "use sd or csd"),
    (MethodConfig("x", "", teacher=MixupConfig("sim", layer="input")), "features or logits"),
    (MethodConfig("x", "", teacher=MixupConfig("cutmix")), "teacher.kind"),
    (MethodConfig("x", "", teacher=MixupConfig("rand", alpha=0.0)), "alpha must be > 0"),
    (MethodConfig("x", "", teacher=MixupConfig("ea", ea_fraction=0.0)), "ea_fraction must be in"),
    (MethodConfig("x", "", teacher=MixupConfig("ea", ea_fraction=1.5)), "ea_fraction must be in"),
    (MethodConfig("x", "", teacher=MixupConfig("rand", main_weight=0.0)), "main_weight must be in"),
    (MethodConfig("x", "", teacher=MixupConfig("rand", main_weight=1.5)), "main_weight must be in"),
    (MethodConfig("x", "", distill=DistillConfig("none", generations=2)), "use sd or csd"),
    (MethodConfig("x", "", teacher=MixupConfig("lcl", lcl_ce_weight=1.5)), "lcl_ce_weight must be in"),
])
def test_options_that_do_not_fit_are_refused(bad, message):
    with pytest.raises(ValueError, match=f"method 'x': .*{message}"):  # names the method
        bad.validate()


def test_options_at_their_bounds_are_accepted():
    """The edges of the allowed ranges: a whole data-map half, the sample's own CE alone, one model."""
    MethodConfig("x", "", teacher=MixupConfig("ea", ea_fraction=1.0, main_weight=1.0, alpha=1e-3)).validate()
    MethodConfig("x", "", distill=DistillConfig("none", generations=1)).validate()
    for lam in (0.0, 1.0):  # LCL's CE weight: pure contrastive or pure CE
        MethodConfig("x", "", teacher=MixupConfig("lcl", lcl_ce_weight=lam)).validate()


def teacher_task(recipe: MixupConfig, data: Encoded, data_map: dict = DATA_MAP, model: str = "m"):
    """Generation 1's task and epoch rows, from the production `stage._teacher_task`."""
    spec = StageSpec(generation=1, seed=0, data=DataConfig("isear", None, "", model), train=TrainConfig(),
                     teacher=recipe, distill=DistillConfig(), device="cpu")
    if recipe.lcl_second_view == "synonym":  # the copies of the 12 texts (the rows of both data sets here)
        require_wordnet()
    return _teacher_task(spec, PreparedData(None, data, None, None, None, None, tuple(TEXTS)), data_map, 6)


@pytest.mark.parametrize("name", list_methods())
def test_every_preset_takes_a_training_step(tiny, name):
    """One optimisation step of the preset's teacher recipe and, if it distils, its student loss."""
    model_path, data = tiny
    method = get_method(name).with_default_generations(2)
    rng = np.random.default_rng(0)
    model = build_model(model_path, 6, seed=0)
    before = model.out_proj.weight.detach().clone()
    tasks = [teacher_task(method.teacher, data, model=model_path)[0]]
    if method.distill.kind != "none":
        tasks.append(DistillTask(rng.normal(size=(len(data), 6)), 2.0, method.distill.scale_student))
    for task in tasks:
        out = task(model, data, np.arange(4), 0.5, rng)
        assert out["logits"].shape == (4, 6) and torch.isfinite(out["loss"])
        out["loss"].backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(before, model.out_proj.weight)


@pytest.mark.parametrize("name", ["ce", "rand_m_mixup", "csd"])
def test_a_task_sees_its_rows_as_the_model_does(tiny, name):
    """The logits a task trains on are the model's on those rows with their padding masked, as
    evaluation sees them (rows of different lengths share the batch)."""
    model_path, data = tiny
    model = build_model(model_path, 6, seed=0).eval()  # no dropout: the two passes must agree
    method = get_method(name)
    rows = np.array([0, 3, 8, 11])
    assert len({int(data.lengths[r]) for r in rows}) > 1
    task = (DistillTask(np.zeros((len(data), 6)), 2.0) if method.distill.kind != "none" else
            teacher_task(method.teacher, data)[0])
    with torch.no_grad():
        out = task(model, data, rows, 0.5, np.random.default_rng(0))
    np.testing.assert_allclose(out["logits"].numpy(), predict_logits(model, data)[rows], rtol=1e-4, atol=1e-5)
    if type(task) is CrossEntropyTask:
        assert out["ce"] is not None and out["ce"].item() == pytest.approx(out["loss"].item())


def _partners_seen(partners, rows, rng, draws: int = 200) -> set[int]:
    calls = [partners.pick(np.asarray(rows), rng) for _ in range(draws)]
    picks = np.concatenate(calls)
    assert picks.shape == (draws * len(rows), 1)  # one partner per row: loss 0.8 CE + 0.2 mix
    # each row draws its own partner: one draw shared by the batch gives every row the same mate
    # (independent draws do so in under 2% of the calls here: 4 rows of 4 candidates, 1/64)
    shared = sum(len(set(c.ravel().tolist())) == 1 for c in calls)
    assert shared < 0.1 * draws, f"{shared} of {draws} calls gave every row the same partner"
    return set(picks.ravel().tolist())


@pytest.mark.parametrize("name", list_methods())
def test_each_preset_gets_its_teacher_recipe(name, tiny_model):
    """The recipe `stage._teacher_task` builds for each preset, checked against the hand-made data map."""
    recipe = PRESET_RECIPE[name]
    task, rows = teacher_task(get_method(name).teacher, TRAIN_ROWS, model=tiny_model)
    rng = np.random.default_rng(0)
    if recipe == "ce":
        assert type(task) is CrossEntropyTask and rows is None
        return
    if recipe == "lcl":  # lambda 0.5 and tau 0.3 (the LCL code's config.py), a weighting network with a head per label
        assert type(task) is LabelAwareContrastiveTask and rows is None
        assert (task.ce_weight, task.temperature, task.weighting.out_proj.out_features) == (0.5, 0.3, 6)
        assert task.second_view == "synonym" and len(task.copies) == 12  # the original's synonym copy of each text
        return
    assert isinstance(task, MixupTask) and (task.alpha, task.main_weight, task.layer) == (5.0, 0.8, "features")
    if recipe == "rand":  # a random partner from the whole set, every row trains
        assert rows is None and _partners_seen(task.partners, np.arange(12), rng) == set(range(12))
    elif recipe in ("ea", "ea66"):  # a random partner from the other subset; the epoch is the two subsets
        easy, ambiguous = (HALF_EASY, HALF_AMBIGUOUS) if recipe == "ea" else (EA66_EASY, EA66_AMBIGUOUS)
        assert rows.tolist() == sorted(easy + ambiguous)
        assert _partners_seen(task.partners, easy, rng) == set(ambiguous)
        assert _partners_seen(task.partners, ambiguous, rng) == set(easy)
    else:  # sim: most and least saliency-similar row of the other half, saliency from the map's last logits
        assert rows.tolist() == list(range(12))
        z = LAST_LOGITS - LAST_LOGITS.max(1, keepdims=True)
        sal = np.abs(np.exp(z) / np.exp(z).sum(1, keepdims=True) - np.eye(6)[LABELS])
        unit = sal / np.linalg.norm(sal, axis=1, keepdims=True)
        expected = []
        for i in range(12):
            other = np.array(HALF_AMBIGUOUS if i in HALF_EASY else HALF_EASY)
            cos = unit[other] @ unit[i]
            expected.append([other[cos.argmax()], other[cos.argmin()]])
        assert task.partners.pick(np.arange(12), rng).tolist() == expected


@pytest.mark.parametrize("kind", ["rand", "ea", "sim", "lcl"])
def test_a_variants_recipe_options_reach_its_teacher_task(kind, tiny_model):
    """A spec's variant (README: the logits layer; other alpha, weights, LCL's lambda and tau) is the
    recipe its teacher trains with, not the preset's defaults it replaces."""
    recipe = MixupConfig(kind, alpha=2.0, main_weight=0.7, layer="logits", lcl_ce_weight=0.3, lcl_temperature=0.1)
    task, _ = teacher_task(recipe, TRAIN_ROWS, model=tiny_model)
    if kind == "lcl":
        assert (task.ce_weight, task.temperature) == (0.3, 0.1)
    else:
        assert (task.alpha, task.main_weight, task.layer) == (2.0, 0.7, "logits")


class FixedPartners:
    """Partners chosen by the test (the partner search has its own tests)."""

    def __init__(self, mates: np.ndarray):
        self.mates, self.n_partners = mates, mates.shape[1]

    def pick(self, rows, rng):
        return self.mates

    def refresh(self, rows, logits, labels):
        pass


class FixedRng:
    """Hands out the test's lambdas, one (batch, 1) column per mix, and records each Beta draw."""

    def __init__(self, lams: np.ndarray):
        self.lams, self.calls = list(lams), []

    def beta(self, a, b, size=None):
        self.calls.append((a, b, size))
        return np.asarray(self.lams.pop(0)[: np.prod(size)]).reshape(size)


MIX_ROWS = np.array([0, 5, 6, 8])
MIX_MATES = np.array([[7, 2], [4, 9], [1, 11], [10, 3]])  # every partner has another label than its row
MIX_LAMS = np.array([[0.9, 0.3, 0.6, 0.15], [0.25, 0.8, 0.65, 0.4]])  # lam per sample and per mix
MIX_WEIGHTS = {1: (0.8, 0.2), 2: (0.8, 0.1, 0.1)}  # docs/method.md, Saliency and Sim-MixUp: 0.8 + 0.2; 0.8 + 0.1 + 0.1
README_VARIANT = MixupConfig("sim", layer="logits", alpha=0.4, scope="batch")  # README's sim_logits_batch


def hand_mixup_loss(net: TokenTableNet, layer: str, n_partners: int) -> tuple[float, float]:
    """(CE, loss) of MIX_ROWS with the first n_partners columns of MIX_MATES, in float64 numpy."""
    y, onehot = np.array(LABELS), np.eye(6)
    z = net.numpy_classify(TABLE)
    ce = -log_softmax(z[MIX_ROWS])[np.arange(4), y[MIX_ROWS]].mean()
    mixes = []
    for j in range(n_partners):
        mates, lam = MIX_MATES[:, j], MIX_LAMS[j][:, None]
        if layer == "features":
            mixed = net.numpy_classify(lam * TABLE[MIX_ROWS] + (1 - lam) * TABLE[mates])
        else:
            mixed = lam * z[MIX_ROWS] + (1 - lam) * z[mates]
        target = lam * onehot[y[MIX_ROWS]] + (1 - lam) * onehot[y[mates]]
        mixes.append(-(target * log_softmax(mixed)).sum(1).mean())
    weights = MIX_WEIGHTS[n_partners]
    return ce, weights[0] * ce + sum(w * m for w, m in zip(weights[1:], mixes))


@pytest.mark.parametrize("recipe", [get_method("sim_mixup_csd").teacher, get_method("rand_m_mixup").teacher,
                                    get_method("ea66_m_mixup").teacher, README_VARIANT,
                                    MixupConfig("rand", layer="logits")],
                         ids=["sim", "rand", "ea66", "readme_sim_logits", "rand_logits"])
def test_mixup_loss_by_hand(recipe):
    """loss = 0.8 CE(row) + the mixes' soft CE (0.1 + 0.1 with two partners, 0.2 with one), each mix
    lam h_row + (1 - lam) h_partner on the features (or logits) with target lam y_row + (1 - lam) y_partner."""
    net = TokenTableNet(TABLE, HEAD_W, HEAD_B)
    task, _ = teacher_task(recipe, TRAIN_ROWS)
    n = task.partners.n_partners
    task.partners = FixedPartners(MIX_MATES[:, :n])
    rng = FixedRng(MIX_LAMS)
    out = task(net, TRAIN_ROWS, MIX_ROWS, 0.5, rng)

    ce, expected = hand_mixup_loss(net, recipe.layer, n)
    _, other_layer = hand_mixup_loss(net, "logits" if recipe.layer == "features" else "features", n)
    assert abs(other_layer - expected) > 1e-3 * expected  # this case tells the two layers apart
    assert rng.calls == [(recipe.alpha, recipe.alpha, (4, 1))] * n  # lam ~ Beta(alpha, alpha), one per sample
    assert out["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(out["logits"].detach().numpy(), net.numpy_classify(TABLE)[MIX_ROWS], rtol=1e-5)


def test_a_mixup_task_defaults_to_the_papers_recipe():
    """alpha 5 (lam ~ Beta(5, 5)), 0.8 on the sample's own CE, mixing the penultimate features."""
    task = MixupTask(FixedPartners(MIX_MATES[:, :1]))
    assert (task.alpha, task.main_weight, task.layer) == (5.0, 0.8, "features")


@pytest.mark.parametrize("search", [similarity_partners, _search_numpy, _search_torch], ids=["default", "numpy", "torch"])
def test_similarity_partners_match_brute_force(search):
    """Both searches (numpy on CPU, torch on a GPU; both run here) against cosine one pair at a time,
    with chunks that do not divide the queries."""
    rng = np.random.default_rng(1)
    table = torch.from_numpy(rng.random((200, 6)).astype(np.float32))
    queries, candidates = torch.arange(0, 100), torch.arange(100, 200)
    best, worst = search(table, queries, candidates, 7)
    for q in range(100):
        sims = [F.cosine_similarity(table[q], table[c], dim=0).item() for c in range(100, 200)]
        assert best[q].item() == 100 + int(np.argmax(sims))
        assert worst[q].item() == 100 + int(np.argmin(sims))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_a_gpu_table_is_searched_on_the_gpu_with_the_cpu_searchs_answer():
    """The dispatch: a table on a GPU goes to the torch search with its default chunk (4096 rows;
    4,500 queries make two chunks), answers there, and picks the partners the CPU search picks
    (up to float rounding of near-equal cosines)."""
    rng = np.random.default_rng(4)
    table = torch.from_numpy(rng.random((5000, 6)).astype(np.float32))
    queries, candidates = torch.arange(0, 4500), torch.arange(4500, 5000)
    best, worst = similarity_partners(table.cuda(), queries.cuda(), candidates.cuda())
    assert best.is_cuda and worst.is_cuda
    assert best.shape == worst.shape == (4500,)
    unit = table.double() / table.double().norm(dim=1, keepdim=True)
    cos = unit[queries] @ unit[candidates].T
    rows = torch.arange(4500)
    assert torch.all(cos[rows, best.cpu() - 4500] >= cos.max(dim=1).values - 1e-6)
    assert torch.all(cos[rows, worst.cpu() - 4500] <= cos.min(dim=1).values + 1e-6)
    cpu_best, cpu_worst = similarity_partners(table, queries, candidates)
    assert (best.cpu() == cpu_best).float().mean() > 0.999 and (worst.cpu() == cpu_worst).float().mean() > 0.999


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


@pytest.mark.parametrize("scope", ["half", "batch"])
def test_sim_partners_search_the_whole_other_half_or_one_random_batch_of_it(scope):
    """scope "half" (the paper): the most and least similar row of the whole other half; "batch"
    (the predecessor code): of len(rows) rows of it, drawn without replacement from the pick's rng."""
    table = np.random.default_rng(3).random((80, 6))
    easy, amb = np.arange(0, 40), np.arange(40, 80)
    partners = SaliencyPartners(easy, amb, table, scope=scope)
    rows = np.array([1, 7, 22, 30])  # easy rows: partners come from the ambiguous half
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    for seed in range(5):
        candidates = amb if scope == "half" else amb[np.sort(np.random.default_rng(seed).choice(40, 4, replace=False))]
        cos = unit[rows] @ unit[candidates].T
        expected = np.stack([candidates[cos.argmax(1)], candidates[cos.argmin(1)]], axis=1)
        np.testing.assert_array_equal(partners.pick(rows, np.random.default_rng(seed)), expected)


def test_signed_saliency_refreshes_signed():
    partners = SaliencyPartners(np.arange(2), np.arange(2, 4), np.zeros((4, 3)), signed=True)
    logits, labels = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([1])
    partners.refresh(np.array([2]), logits, labels)
    assert torch.allclose(partners.table[2], torch.softmax(logits, -1)[0] - F.one_hot(labels, 3)[0])


def test_saliency_is_the_logit_gradient_of_ce():
    z = torch.randn(5, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0])
    F.cross_entropy(z, y, reduction="sum").backward()
    assert torch.allclose(saliency(z.detach(), y, signed=True), z.grad, atol=1e-6)
    assert torch.allclose(saliency(z.detach(), y), z.grad.abs(), atol=1e-6)  # docs/method.md, Saliency and Sim-MixUp


@pytest.mark.parametrize("scale_student, annealing", [(False, True), (True, True), (False, False), (True, False),
                                                      (None, None)], ids=["plain", "scaled", "no_anneal",
                                                                          "scaled_no_anneal", "defaults"])
def test_distill_loss_by_hand(scale_student, annealing):
    """(1 - lam) CE(z_s) + lam T^2 KL(softmax(z_t / T) || softmax(z_s [/ T])); lam = 1 - progress with
    annealing, 0.5 without; the student divided by T only with scale_student
    (docs/method.md, Self-distillation). Without either option: the paper's (student unscaled, annealing on)."""
    net = TokenTableNet(TABLE, HEAD_W, HEAD_B)
    rows, T, progress = np.array([3, 0, 5]), 2.5, 0.25
    teacher = np.random.default_rng(4).normal(size=(12, 6)) * 3
    if scale_student is None:
        task, scale_student, annealing = DistillTask(teacher, T), False, True
    else:
        task = DistillTask(teacher, T, scale_student=scale_student, annealing=annealing)
    out = task(net, TRAIN_ROWS, rows, progress, np.random.default_rng(0))

    z = net.numpy_classify(TABLE)[rows]
    log_pt = log_softmax(teacher[rows] / T)
    kl = (np.exp(log_pt) * (log_pt - log_softmax(z / T if scale_student else z))).sum(1).mean()
    ce = -log_softmax(z)[np.arange(3), np.array(LABELS)[rows]].mean()
    lam = 0.75 if annealing else 0.5
    assert out["kd"].item() == pytest.approx(T * T * kl, rel=1e-5)
    assert out["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert out["loss"].item() == pytest.approx((1 - lam) * ce + lam * T * T * kl, rel=1e-5)



def test_distill_takes_teacher_logits_from_ray_without_a_warning(warnings_as_errors):
    """A parent's training-set logits arrive read-only from Ray's object store: the student's task
    copies them (torch cannot share a read-only buffer, and warns) and computes the same loss;
    writable float32 logits stay shared, not copied."""
    net = TokenTableNet(TABLE, HEAD_W, HEAD_B)
    teacher = (np.random.default_rng(4).normal(size=(12, 6)) * 3).astype(np.float32)
    stored = DistillTask(from_object_store(teacher), 2.5)
    shared = DistillTask(teacher, 2.5)
    assert shared.teacher_logits.data_ptr() == teacher.ctypes.data
    rows = np.array([3, 0, 5])
    losses = [task(net, TRAIN_ROWS, rows, 0.25, np.random.default_rng(0))["loss"].item() for task in (stored, shared)]
    assert losses[0] == losses[1]


def test_data_map_regions():
    probs = np.array([[0.9, 0.1, 0.5, 0.8, 0.2, 0.6], [0.9, 0.3, 0.1, 0.8, 0.2, 0.2]], dtype=np.float32)
    dmap = DataMap(probs, probs > 0.5)
    easy, amb = dmap.regions(1.0)
    # confidence (mean over epochs): .9 .2 .3 .8 .2 .4 -> the top half is easy
    assert list(easy) == [0, 3, 5] and list(amb) == [1, 2, 4]
    easy66, amb66 = dmap.regions(0.66)
    # 33% most confident, then the 33% most variable of the rest (std .1 .2 0 .2 for rows 1 2 4 5)
    assert list(easy66) == [0, 3] and set(amb66) == {2, 5}


def test_training_is_deterministic(tiny):
    model_path, data = tiny
    cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3)
    runs = []
    for _ in range(2):
        model = build_model(model_path, 6, seed=3)
        fit = train(model, CrossEntropyTask(), data, data, cfg, seed=3, record_dynamics=True)
        runs.append(predict_logits(fit.model, data))
        assert fit.gold_probs.shape == (3, len(data))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_training_fits_its_rows(tiny):
    """The loop learns: the tiny encoder goes from chance to fitting its 12 rows (a loop that lost
    its optimiser step, its gradient or its labels stays at chance)."""
    model_path, data = tiny
    model = build_model(model_path, 6, seed=3)
    before = classification_metrics(predict_logits(model, data), data.labels)["accuracy"]
    fit = train(model, CrossEntropyTask(), data, None, TrainConfig(epochs=20, batch_size=4, lr=1e-2, select="last"),
                seed=3)
    after = classification_metrics(predict_logits(fit.model, data), data.labels)["accuracy"]
    assert before < 34 and after >= 90, (before, after)
    assert fit.history[-1]["train_loss"] < 0.5 * fit.history[0]["train_loss"]
