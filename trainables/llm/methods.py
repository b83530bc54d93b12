"""LLM baseline methods: a model and a prompt kind, with the presets of the paper's rows.

A preset names one row of Tables 1 and 2 (section 4.2): Llama 3 8B and Gemma 2 9B,
instruction-tuned, zero-shot or with 3 few-shot prompts of 2 examples per class (section 4.4).
A spec entry may override `model` (a hub name or a local folder), `max_new_tokens` and
`batch_size`; `prompts`, `shots_per_class` and `examples_from` change what the row is, so they
are options too.
These presets are of kind "llm" in the one registry of methods (trainables/methods/registry.py,
`METHODS`); orchestrator/kinds.py says how that kind is planned, run and recorded.

What seeds mean here: decoding is greedy, so a zero-shot row is deterministic and runs once
(with the spec's first seed); a few-shot row runs one trial per prompt, prompt i with the
spec's i-th seed, which draws its examples. The report's mean ± std over a few-shot row's
trials is the paper's "mean over the 3 prompts".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

# where the OOD test prompts' few-shot examples come from (docs/method.md, LLM baselines)
_FEW_SHOT = "3 few-shot prompts of 2 examples per class (A.5), drawn from the ID training split, for the OOD test too"
EXAMPLE_SOURCES = ("id_train", "ood_pool")
LLAMA3_8B = "meta-llama/Meta-Llama-3-8B-Instruct"
GEMMA2_9B = "google/gemma-2-9b-it"


@dataclass(frozen=True)
class LLMMethodConfig:
    """One LLM row.

    Attributes:
        model: hub name or local folder of an instruction-tuned causal LM with a chat template.
        shots_per_class: 0 for the zero-shot prompt; else examples per class in a few-shot prompt.
        prompts: few-shot prompts (trials), each from its own seeded draw; 1 for zero-shot.
        max_new_tokens: the longest answer generated (the JSON asked for is about 20 tokens); 64
            until a real model has run and the cut answers it counts say otherwise.
        batch_size: prompts generated at once.
        examples_from: where a few-shot prompt's examples come from for the OOD test texts:
            "id_train" (the ID training split, the same examples as the ID test's) or "ood_pool"
            (the OOD dataset's fine-tuning pool). The paper does not say; the ID test's always
            come from the ID training split.
        paper_row: the row's name in the paper's tables, "" for a row the paper does not have.
    """

    kind: ClassVar[str] = "llm"  # not a field: it stays out of asdict, hence out of fingerprints
    name: str  # the row's name: trial keys, MLflow runs and report rows
    description: str  # one line for listings and the report
    model: str
    shots_per_class: int = 0
    prompts: int = 1
    max_new_tokens: int = 64
    batch_size: int = 16
    examples_from: str = "id_train"
    paper_row: str = ""

    def validate(self) -> None:
        where = f"method {self.name!r}"
        if self.shots_per_class < 0:
            raise ValueError(f"{where}: shots_per_class must be >= 0 (0 is zero-shot), got {self.shots_per_class}")
        if self.shots_per_class == 0 and self.prompts != 1:
            raise ValueError(f"{where}: a zero-shot row has one prompt (greedy decoding repeats it exactly); "
                             f"set prompts: 1, or shots_per_class > 0 for few-shot prompts")
        if self.prompts < 1:
            raise ValueError(f"{where}: prompts must be >= 1, got {self.prompts}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError(f"{where}: max_new_tokens and batch_size must be >= 1")
        if self.examples_from not in EXAMPLE_SOURCES:
            raise ValueError(f"{where}: examples_from must be one of {', '.join(EXAMPLE_SOURCES)}, "
                             f"not {self.examples_from!r}")
        if self.shots_per_class == 0 and self.examples_from != "id_train":
            raise ValueError(f"{where}: a zero-shot row has no examples; examples_from needs shots_per_class > 0")


LLM_PRESETS: dict[str, LLMMethodConfig] = {
    m.name: m
    for m in [
        LLMMethodConfig("llama3_8b_zs", "Llama 3 8B Instruct, zero-shot prompt (A.5)", LLAMA3_8B,
                        paper_row="llama3-8b(zs)"),
        LLMMethodConfig("gemma2_9b_zs", "Gemma 2 9B it, zero-shot prompt (A.5)", GEMMA2_9B,
                        paper_row="gemma2-9b-it(zs)"),
        LLMMethodConfig("llama3_8b_fs", f"Llama 3 8B Instruct, {_FEW_SHOT}", LLAMA3_8B, shots_per_class=2, prompts=3,
                        paper_row="llama3-8b(fs-3prompts)"),
        LLMMethodConfig("gemma2_9b_fs", f"Gemma 2 9B it, {_FEW_SHOT}", GEMMA2_9B, shots_per_class=2, prompts=3,
                        paper_row="gemma2-9b(fs-3prompts)"),
    ]
}
OPTIONS = ("model", "shots_per_class", "prompts", "max_new_tokens", "batch_size", "examples_from")
