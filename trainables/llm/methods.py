"""LLM baseline methods: a model and a prompt kind, with the presets of the paper's rows.

A preset names one row of Tables 1 and 2 (section 4.2): Llama 3 8B and Gemma 2 9B,
instruction-tuned, zero-shot or with 3 few-shot prompts of 2 examples per class (section 4.4).
A spec entry may override `model` (a hub name or a local folder), `max_new_tokens` and
`batch_size`; `prompts` and `shots_per_class` change what the row is, so they are options too.
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

LLAMA3_8B = "meta-llama/Meta-Llama-3-8B-Instruct"
GEMMA2_9B = "google/gemma-2-9b-it"


@dataclass(frozen=True)
class LLMMethodConfig:
    """One LLM row.

    Attributes:
        model: hub name or local folder of an instruction-tuned causal LM with a chat template.
        shots_per_class: 0 for the zero-shot prompt; else examples per class in a few-shot prompt.
        prompts: few-shot prompts (trials), each from its own seeded draw; 1 for zero-shot.
        max_new_tokens: the longest answer generated (the JSON asked for is about 20 tokens).
        batch_size: prompts generated at once.
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


LLM_PRESETS: dict[str, LLMMethodConfig] = {
    m.name: m
    for m in [
        LLMMethodConfig("llama3_8b_zs", "Llama 3 8B Instruct, zero-shot prompt (A.5)", LLAMA3_8B,
                        paper_row="llama3-8b(zs)"),
        LLMMethodConfig("gemma2_9b_zs", "Gemma 2 9B it, zero-shot prompt (A.5)", GEMMA2_9B,
                        paper_row="gemma2-9b-it(zs)"),
        LLMMethodConfig("llama3_8b_fs", "Llama 3 8B Instruct, 3 few-shot prompts of 2 examples per class (A.5)",
                        LLAMA3_8B, shots_per_class=2, prompts=3, paper_row="llama3-8b(fs-3prompts)"),
        LLMMethodConfig("gemma2_9b_fs", "Gemma 2 9B it, 3 few-shot prompts of 2 examples per class (A.5)",
                        GEMMA2_9B, shots_per_class=2, prompts=3, paper_row="gemma2-9b(fs-3prompts)"),
    ]
}
OPTIONS = ("model", "shots_per_class", "prompts", "max_new_tokens", "batch_size")
