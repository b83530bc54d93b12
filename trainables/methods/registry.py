"""Methods as points in a few orthogonal axes, and the named presets of the paper's rows.

docs/method.md, The methods of the tables: teacher recipe (ce | rand | ea(0.66 or 1.0) | sim
MixUp | lcl, the Electra+LCL baseline), distillation (none | sd | csd, generations,
scale_student), and post-hoc temperature scaling. A preset is a named combination, never a
class; a spec may also give the options directly for a new variant. A preset may also carry
the encoder it is defined on and training settings of its own (`model`, `train`): the
Electra+LCL row is ELECTRA trained as its authors trained it, whatever the sweep's roberta-base.

Generations count every model of the chain, the teacher included: the paper's table 11 has
"RoBERTa+CSD Gen 1" equal to "RoBERTa + TS", i.e. gen 1 is the teacher and gen 2 its first
student. "1G-SD" is therefore a teacher plus one student (2 generations).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from trainables.llm.methods import LLM_PRESETS, LLMMethodConfig

if TYPE_CHECKING:
    from trainables.train import TrainConfig

MIXUP_KINDS = ("none", "rand", "ea", "sim", "lcl")
DISTILL_KINDS = ("none", "sd", "csd")
# an LCL anchor's second view (docs/method.md, LCL): the original's WordNet
# synonym copy, a second dropout pass (SimCSE), or none (the batch alone)
LCL_SECOND_VIEWS = ("synonym", "dropout", "none")


@dataclass(frozen=True)
class MixupConfig:
    """How the generation-1 teacher is trained (docs/method.md, Saliency and Sim-MixUp).

    Attributes:
        kind: none (plain CE), rand (partner from the whole set), ea (random partner from the
            other data-map subset), sim (most similar and dissimilar partner by saliency), lcl
            (no MixUp: label-aware contrastive loss with a weighting network, Suresh and Ong
            2021; trainables/methods/losses.py, LabelAwareContrastiveTask).
        alpha: lam ~ Beta(alpha, alpha); the paper's 5 (the predecessor code used 0.4).
        ea_fraction: 1.0 splits the data map in halves; 0.66 takes the top-33% confident as
            easy and the top-33% variable as ambiguous (Hosseini and Caragea 2022).
        layer: mix the head's penultimate "features" (the paper) or the "logits" (TDMixUp code).
        scope: partners searched in the whole other "half" (the paper) or only in a random
            mini-batch of it ("batch", the predecessor code).
        main_weight: weight of the sample's own CE; the rest is split over its mixes
            (0.8 + 0.1 + 0.1 for Sim-MixUp, 0.8 + 0.2 for one partner).
        signed_saliency: use softmax - onehot instead of its absolute value.
        lcl_ce_weight: lcl only: lambda of loss = lambda CE + (1 - lambda) LCL (+ lambda CE of
            the weighting network); 0.5 in the original's config.py.
        lcl_temperature: lcl only: the contrastive temperature; 0.3 in the original's config.py.
        lcl_second_view: lcl only: what each text of a step is paired with: "synonym" (a WordNet
            synonym copy, the original's; electra_lcl's), "dropout" (the text again, another
            dropout mask) or "none" (nothing: an anchor may have no positive).
    """

    kind: str = "none"
    alpha: float = 5.0
    ea_fraction: float = 1.0
    layer: str = "features"
    scope: str = "half"
    main_weight: float = 0.8
    signed_saliency: bool = False
    lcl_ce_weight: float = 0.5
    lcl_temperature: float = 0.3
    lcl_second_view: str = "none"

    @property
    def needs_data_map(self) -> bool:
        return self.kind in ("ea", "sim")

    @property
    def is_own_data_map(self) -> bool:
        """Its own training dynamics give the data map that OOD fine-tuning reads (which ID rows
        are ambiguous): plain CE is the data-map run of the MixUp teachers; an LCL teacher is a
        model of its own (its own encoder and settings), so it maps its own run rather than
        training a CE model on that encoder only for the map."""
        return self.kind in ("none", "lcl")


@dataclass(frozen=True)
class DistillConfig:
    """Self-distillation over generations (docs/method.md, Self-distillation).

    Attributes:
        kind: none, sd (T = 1 every generation) or csd (T = the teacher's validation-ECE optimum).
        generations: models in the chain, teacher included; None takes the sweep's default.
        scale_student: divide the student's logits by T inside the KL too.
        annealing: lam_t = 1 - step / total_steps (BAM); off keeps lam_t = 0.5.
    """

    kind: str = "none"
    generations: int | None = None
    scale_student: bool = False
    annealing: bool = True


@dataclass(frozen=True)
class MethodConfig:
    """One row of the paper's tables that trains a chain of generations."""

    kind: ClassVar[str] = "chain"  # not a field: it stays out of asdict, hence out of fingerprints
    name: str  # the row's name: trial keys, MLflow runs and report rows
    description: str  # one line for listings and the report
    teacher: MixupConfig = field(default_factory=MixupConfig)  # how generation 1 is trained
    distill: DistillConfig = field(default_factory=DistillConfig)  # how generations >= 2 learn from their parent
    post_hoc_ts: bool = False  # report ECE after the validation-optimal temperature (the '+ TS' rows)
    report_generation: str = "best"  # the generation reported: best by ID validation macro F1 (g*), or the last
    model: str | None = None  # the encoder this row is defined on; None: the sweep's `model`
    # training settings of the row's own (TrainConfig field, value), over the sweep's and dataset's
    train: tuple[tuple[str, object], ...] = ()

    @property
    def generations(self) -> int:
        if self.distill.kind == "none":
            return 1
        if self.distill.generations is None:
            raise ValueError(f"method {self.name!r}: generations not resolved; call with_default_generations")
        return self.distill.generations

    def train_config(self, base: "TrainConfig") -> "TrainConfig":
        """The sweep's (and dataset's) training settings with this row's own on top."""
        return replace(base, **dict(self.train))

    def with_default_generations(self, generations: int) -> "MethodConfig":
        if self.distill.kind == "none" or self.distill.generations is not None:
            return self
        return replace(self, distill=replace(self.distill, generations=generations))

    @property
    def reports_scaled_ece(self) -> bool:
        """CSD-family generations report ECE after their own validation-optimal T (docs/method.md, Reporting)."""
        return self.distill.kind == "csd" or self.post_hoc_ts

    def validate(self) -> None:
        """Refuse option sets that do not fit, before anything runs."""
        where = f"method {self.name!r}"
        t, d = self.teacher, self.distill
        if t.kind not in MIXUP_KINDS:
            raise ValueError(f"{where}: teacher.kind {t.kind!r} is not one of {', '.join(MIXUP_KINDS)}")
        if d.kind not in DISTILL_KINDS:
            raise ValueError(f"{where}: distill.kind {d.kind!r} is not one of {', '.join(DISTILL_KINDS)}")
        if t.layer not in ("features", "logits"):
            raise ValueError(f"{where}: teacher.layer must be features or logits, not {t.layer!r}")
        if t.scope not in ("half", "batch"):
            raise ValueError(f"{where}: teacher.scope must be half or batch, not {t.scope!r}")
        if t.alpha <= 0:
            raise ValueError(f"{where}: teacher.alpha must be > 0 (Beta(alpha, alpha)), got {t.alpha}")
        if not 0.0 < t.ea_fraction <= 1.0:
            raise ValueError(f"{where}: teacher.ea_fraction must be in (0, 1], got {t.ea_fraction}")
        if not 0.0 < t.main_weight <= 1.0:
            raise ValueError(f"{where}: teacher.main_weight must be in (0, 1], got {t.main_weight}")
        if d.kind == "none":
            if d.generations not in (None, 1):
                raise ValueError(
                    f"{where}: distill.kind none trains one model, but distill.generations is {d.generations}; "
                    "use sd or csd for several generations"
                )
            if d.scale_student:
                raise ValueError(f"{where}: scale_student needs distillation (sd or csd)")
        elif d.generations is not None and d.generations < 2:
            raise ValueError(
                f"{where}: {d.kind} with {d.generations} generation has no student to distil into; "
                "generations counts the teacher too, so use 2 or more"
            )
        if self.report_generation not in ("best", "last"):
            raise ValueError(f"{where}: report_generation must be best or last")
        if not 0.0 <= t.lcl_ce_weight <= 1.0:
            raise ValueError(f"{where}: teacher.lcl_ce_weight must be in [0, 1], got {t.lcl_ce_weight}")
        if not t.lcl_temperature > 0:
            raise ValueError(f"{where}: teacher.lcl_temperature must be > 0, got {t.lcl_temperature}")
        if t.lcl_second_view not in LCL_SECOND_VIEWS:
            raise ValueError(f"{where}: teacher.lcl_second_view must be one of {', '.join(LCL_SECOND_VIEWS)}, "
                             f"not {t.lcl_second_view!r}")


def _m(name: str, description: str, **kw) -> MethodConfig:
    return MethodConfig(name=name, description=description, **kw)


_CE = MixupConfig("none")
_RAND = MixupConfig("rand")
_EA = MixupConfig("ea", ea_fraction=1.0)
_EA66 = MixupConfig("ea", ea_fraction=0.66)
_SIM = MixupConfig("sim")
_SD = DistillConfig("sd")
_CSD = DistillConfig("csd")
_ONE_STUDENT = 2  # teacher + one student
# Electra+LCL as Suresh and Ong (2021) trained it (github.com/varsha33/LCL_loss, config.py and
# train.py): ELECTRA-base, batch size 10, 5 epochs, AdamW lr 2e-5 with weight decay 0.01, linear
# decay without warmup, gradients clipped at norm 1.0. The paper's list of baselines says only "both
# models were initialized with HuggingFace' ELECTRA_base", so the original's settings stand.
# Its batches are drawn at random (DataLoader(shuffle=True)), not grouped by length as the sweep's may
# be, and it keeps the epoch of the best validation accuracy (`is_best = val_acc_1 > best_criterion`).
_LCL_TRAIN = (("batch_size", 10), ("epochs", 5), ("lr", 2e-5), ("weight_decay", 0.01), ("grad_clip", 1.0),
              ("group_by_length", False), ("select", "val_accuracy"))

PRESETS: dict[str, MethodConfig] = {
    m.name: m
    for m in [
        _m("ce", "Plain cross-entropy fine-tuning (the paper's 'RoBERTa' row)", teacher=_CE),
        _m("ce_ts", "CE + post-hoc temperature scaling ('RoBERTa + TS')", teacher=_CE, post_hoc_ts=True),
        _m("rand_m_mixup", "Manifold MixUp with random partners", teacher=_RAND),
        _m("rand_m_mixup_ts", "Rand-M-MixUp + TS", teacher=_RAND, post_hoc_ts=True),
        _m("ea66_m_mixup", "66% EA-M-MixUp (Hosseini and Caragea 2022)", teacher=_EA66),
        _m("ea66_m_mixup_ts", "66% EA-M-MixUp + TS", teacher=_EA66, post_hoc_ts=True),
        _m("ea_m_mixup", "EA-M-MixUp on the two data-map halves (table 3)", teacher=_EA),
        _m("sim_m_mixup", "Sim-M-MixUp alone (table 3)", teacher=_SIM),
        _m("sd", "Self-distillation over generations, T = 1", teacher=_CE, distill=_SD),
        _m("csd", "Calibration-based self-distillation (Li and Caragea 2023)", teacher=_CE, distill=_CSD),
        _m("1g_sd_ea66", "1G-SD + 66% EA-MixUp", teacher=_EA66,
           distill=DistillConfig("sd", generations=_ONE_STUDENT), report_generation="last"),
        _m("1g_csd_ea66", "1G-CSD + 66% EA-MixUp", teacher=_EA66,
           distill=DistillConfig("csd", generations=_ONE_STUDENT), report_generation="last"),
        _m("rand_mixup_csd", "Rand-M-MixUp teacher + CSD (table 3)", teacher=_RAND, distill=_CSD),
        _m("ea_mixup_csd", "EA-M-MixUp teacher + CSD (table 3)", teacher=_EA, distill=_CSD),
        _m("sim_mixup_csd", "Sim-MixUp teacher + CSD (the paper's method)", teacher=_SIM, distill=_CSD),
        _m("csd_scaled_student", "CSD with the student scaled by T too (table 8)", teacher=_CE,
           distill=DistillConfig("csd", scale_student=True)),
        _m("sim_mixup_csd_scaled_student", "Sim-MixUp + CSD, student scaled (table 8)", teacher=_SIM,
           distill=DistillConfig("csd", scale_student=True)),
        _m("electra_lcl", "Electra + label-aware contrastive loss (Suresh and Ong 2021; table 1 baseline)",
           teacher=MixupConfig("lcl", lcl_second_view="synonym"), model="google/electra-base-discriminator",
           train=_LCL_TRAIN),
    ]
}


# Every preset of every kind, by name: the one registry the spec, the plan and the report read.
# A config's `kind` ("chain": trained generations; "llm": a prompted LLM row) says how the sweep
# plans, runs and records it (orchestrator/kinds.py).
METHODS: dict[str, MethodConfig | LLMMethodConfig] = {**PRESETS, **LLM_PRESETS}
assert len(METHODS) == len(PRESETS) + len(LLM_PRESETS), "a chain preset and an LLM preset share a name"
KINDS = ("chain", "llm")


def list_methods(kind: str | None = "chain") -> list[str]:
    """Preset names of one kind, sorted; `kind=None` lists every kind. The default, the trained
    rows, is what --help and the tests that train one step per method walk."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown method kind {kind!r}; kinds: {', '.join(KINDS)}")
    return sorted(n for n, m in METHODS.items() if kind is None or m.kind == kind)


def get_method(name: str) -> MethodConfig | LLMMethodConfig:
    """A preset of any kind by name; an unknown name lists every preset."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(list_methods(None))}") from None
