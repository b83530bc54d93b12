"""Batched greedy generation with a causal LM through its own chat template.

Models come by hub name (gated ones read the token from HF_TOKEN, as transformers does) or
from a local folder. The prompt is one user message (Gemma 2's template has no system role);
decoding is greedy (do_sample=False), so an answer depends only on the prompt, the weights and
the numerics. Prompts are batched longest first with left padding and answers returned in the
prompts' order.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from trainables.models import resolve_model_path

_logger = logging.getLogger(__name__)


class GenerationError(RuntimeError):
    """A model that cannot answer prompts as asked; the message names the model and the fix."""


def local_folder_problem(folder: str) -> str | None:
    """What keeps a local model folder from serving as an instruction-tuned LLM, or None.

    Read from its files alone (no weights loaded), so a spec is refused before anything runs:
    the folder needs a config.json and a chat template (in chat_template.jinja, as transformers 5
    saves it, or in tokenizer_config.json, as older versions and most hub repos do).
    """
    path = Path(folder)
    if not (path / "config.json").is_file():
        return f"{folder} has no config.json; give the folder a model was saved or downloaded to"
    if (path / "chat_template.jinja").is_file():
        return None
    try:
        if json.loads((path / "tokenizer_config.json").read_text()).get("chat_template"):
            return None
    except (OSError, ValueError):
        pass
    return (f"{folder} has no chat template (neither chat_template.jinja nor one in tokenizer_config.json); "
            "use an instruction-tuned model such as Meta-Llama-3-8B-Instruct or gemma-2-9b-it")


def load_generator(name: str, device: torch.device):
    """(model, tokenizer) of a causal LM: bf16 on a GPU (the 8-9B models fit one card), fp32 on a CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
    except OSError as exc:
        raise GenerationError(
            f"cannot load the LLM {name!r} ({exc}). A gated hub model (meta-llama/..., google/gemma-...) needs its "
            "licence accepted on huggingface.co and HF_TOKEN set on every node; offline, give `model:` a local "
            "folder that holds the model (e.g. one `huggingface-cli download` filled)") from None
    if not getattr(tokenizer, "chat_template", None):
        raise GenerationError(f"the tokenizer of {name!r} has no chat template; use an instruction-tuned model "
                              "(e.g. meta-llama/Meta-Llama-3-8B-Instruct, google/gemma-2-9b-it)")
    tokenizer.padding_side = "left"  # generation continues each row from its last prompt token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    return model, tokenizer


def stop_token_ids(model, tokenizer) -> set[int]:
    """The tokens that end an answer: the tokenizer's and the generation config's end of sequence
    (Llama 3's is a list: <|end_of_text|> and <|eot_id|>), and the padding that follows it."""
    ids = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None), tokenizer.pad_token_id):
        ids.update(value if isinstance(value, (list, tuple)) else [] if value is None else [value])
    return ids


@torch.inference_mode()
def generate_answers(model, tokenizer, prompts: Sequence[str], batch_size: int,
                     max_new_tokens: int) -> tuple[list[str], list[bool]]:
    """The model's greedy answer to each prompt (a single user turn), special tokens removed, and
    whether it was cut: it used all `max_new_tokens` without ending (docs/method.md, LLM baselines)."""
    order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))
    answers: list[str] = [""] * len(prompts)
    cut = [False] * len(prompts)
    stops = torch.tensor(sorted(stop_token_ids(model, tokenizer)))
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = tokenizer.apply_chat_template([[{"role": "user", "content": prompts[i]}] for i in rows],
                                              add_generation_prompt=True, padding=True, return_tensors="pt",
                                              return_dict=True)
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model.generate(**batch, do_sample=False, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None)
        new = out[:, batch["input_ids"].shape[1]:]
        ended = torch.isin(new.cpu(), stops).any(dim=1)
        for i, text, done in zip(rows, tokenizer.batch_decode(new, skip_special_tokens=True), ended.tolist()):
            answers[i] = text.strip()
            cut[i] = new.shape[1] >= max_new_tokens and not done
        _logger.info("generated %d / %d answers", min(start + batch_size, len(order)), len(order))
    return answers, cut
