"""A tiny chat LM trained in the test to answer the A.5 prompt in its JSON format, for real.

No mocked `generate`: a 2-layer, 64-wide Llama with a word-level tokenizer and a chat template
is trained for a few seconds on A.5 prompts built from real training texts, with the answer
`{'prediction': '<gold label>', 'confidence': 0.8}` after the assistant turn. Greedy decoding
then writes that JSON (the label it picks is whatever the few seconds taught it), so an LLM
trial runs transformers' generation, the chat template, the parser and the scoring end to end.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

SPECIALS = ["<pad>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
# the answer's pieces are tokens of their own, so the fused decoding is the JSON string itself
OPEN, MIDDLE, CONFIDENCE, CLOSE = "{'prediction': '", "', 'confidence': ", "0.8", "}"


def build_tokenizer(prompts: list[str], labels: list[str], vocab_size: int = 1500):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    counts = Counter(w for p in prompts for w, _ in pre.pre_tokenize_str(p.lower()))
    words = [w for w, _ in counts.most_common(vocab_size)]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(SPECIALS + [OPEN, MIDDLE, CONFIDENCE, CLOSE] + labels + words))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                  eos_token="<|end|>", additional_special_tokens=["<|user|>", "<|assistant|>"],
                                  clean_up_tokenization_spaces=False)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tiny_chat_lm(out: str | Path, prompts: list[str], answers: list[str], labels: list[str],
                      steps: int = 120, seed: int = 0) -> str:
    """Train the tiny LM to answer each prompt with its label in the A.5 JSON; save it for from_pretrained."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = build_tokenizer(prompts, labels)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    model = LlamaForCausalLM(config)
    rows = []
    for prompt, label in zip(prompts, answers):
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_dict=True)["input_ids"]
        answer = tok.convert_tokens_to_ids([OPEN, label, MIDDLE, CONFIDENCE, CLOSE, "<|end|>"])
        rows.append((ids + answer, [-100] * len(ids) + answer))
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        batch = [rows[i] for i in torch.randint(len(rows), (16,), generator=generator).tolist()]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(i)) + i for i, _ in batch])
        target = torch.tensor([[-100] * (width - len(t)) + t for _, t in batch])
        mask = (torch.arange(width) >= width - torch.tensor([len(i) for i, _ in batch])[:, None]).long()
        loss = model(input_ids=ids, attention_mask=mask, labels=target).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.eval()
    model.generation_config.do_sample = False
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)
