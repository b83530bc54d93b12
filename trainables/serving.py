"""A calibrated emotion classifier loaded from an export folder, with nothing of emocal around it.

`emocal export` copies this file into every export folder (as `emocal_serving.py`), and the
MLflow model's `predict` imports that copy: it needs only numpy, torch, safetensors and
transformers, never Ray, MLflow or the rest of emocal. The model class the sweep trains
(`EmotionClassifier`) is defined here for that reason; trainables/models.py re-exports it.

An export folder (docs/design.md, Export and serving):

    calibration.json      temperature T, what it was fitted on, bins, ECE before/after, labels, provenance
    emocal_model.json     how to build the model: "transformers" (AutoModelForSequenceClassification
                          loads the folder alone) or "emocal" (an encoder in encoder/ + our head)
    model.safetensors     the weights; config.json and the tokenizer beside them (save_pretrained)

Probabilities are softmax(logits / T) in float64 (docs/method.md, Temperature scaling), with the
logits computed as the sweep computed them: texts tokenised with truncation at the training
`max_length`, batched by length, fp32. Empty and over-long texts are predicted and flagged.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

CALIBRATION_FILE, MODEL_FILE, WEIGHTS_FILE, ENCODER_DIR = "calibration.json", "emocal_model.json", \
    "model.safetensors", "encoder"
SERVING_COPY = "emocal_serving.py"  # this file, as the export folder carries it
TRANSFORMERS, EMOCAL = "transformers", "emocal"  # emocal_model.json "kind"


class EmotionClassifier(nn.Module):
    """Encoder + `dropout -> dense -> tanh -> dropout -> out_proj` on the pooled tokens.

    The head is RoBERTa's `RobertaClassificationHead` (on the first token), so `roberta-base`
    behaves as in the paper; `features()` returns the tanh output that MixUp mixes. A
    sentence-transformers encoder pools as it was trained to (mean), see `native_pooling`
    in trainables/models.py.
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


def softmax64(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) in float64, as trainables/calibration.py computes it."""
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64) / temperature
    return torch.softmax(z - z.max(dim=-1, keepdim=True).values, dim=-1).numpy()


@dataclass(frozen=True)
class Predictions:
    """One row per text: the calibrated probabilities and what they say."""

    labels: tuple[str, ...]  # class names, in the order of the probability columns
    probabilities: np.ndarray  # (n, k) float64, softmax(logits / T)
    logits: np.ndarray  # (n, k) float32, before scaling
    empty: np.ndarray  # (n,) bool: the text was empty or blank
    truncated: np.ndarray  # (n,) bool: the text had more tokens than max_length and was cut, as in training

    @property
    def label(self) -> list[str]:
        return [self.labels[i] for i in self.probabilities.argmax(-1)]

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(-1)

    def rows(self, abstain_below: float | None = None) -> list[dict]:
        """One dict per text: label, confidence, prob_<class> for every class, flags (and abstain)."""
        out = []
        for i, label in enumerate(self.label):
            row = {"label": label, "confidence": float(self.confidence[i])}
            row.update({f"prob_{name}": float(p) for name, p in zip(self.labels, self.probabilities[i])})
            if abstain_below is not None:
                row["abstain"] = bool(self.confidence[i] < abstain_below)
            row.update(empty_text=bool(self.empty[i]), truncated=bool(self.truncated[i]))
            out.append(row)
        return out


class CalibratedClassifier:
    """An export folder, loaded: `predict(texts)` gives calibrated probabilities.

    Args:
        folder: an export folder written by `emocal export`.
        device: where the model runs (the CPU by default).
    """

    def __init__(self, folder: str | Path, device: str = "cpu"):
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        for name in (CALIBRATION_FILE, MODEL_FILE, WEIGHTS_FILE):
            if not (self.folder / name).is_file():
                raise FileNotFoundError(f"{self.folder} is not an emocal export folder: {name} is missing "
                                        "(make one with `emocal export`)")
        self.calibration = json.loads((self.folder / CALIBRATION_FILE).read_text())
        self.spec = json.loads((self.folder / MODEL_FILE).read_text())
        self.labels = tuple(self.calibration["labels"])
        self.temperature = float(self.calibration["temperature"])
        self.max_length = int(self.spec["max_length"])
        self.batch_size = int(self.spec["eval_batch_size"])
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.device = torch.device(device)
        self.model = load_model(self.folder, self.spec).to(self.device).eval()

    def logits(self, texts: Sequence[str], progress=None) -> tuple[np.ndarray, np.ndarray]:
        """fp32 logits of `texts`, in order, and which texts were truncated.

        Batched by token length as the sweep evaluated (trainables/train.py, predict_logits);
        `progress(done, total)` is called after each batch.
        """
        texts = [str(t) for t in texts]
        full = self.tokenizer(texts, truncation=False, padding=False, verbose=False)["input_ids"]
        cut = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)["input_ids"]
        truncated = np.array([len(f) > self.max_length for f in full], dtype=bool)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        lengths = np.array([len(r) for r in cut], dtype=np.int64)
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                width = int(lengths[rows].max())
                ids = np.full((len(rows), width), pad, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows):
                    ids[r, :lengths[i]] = cut[i]
                    mask[r, :lengths[i]] = 1
                out[rows] = self._forward(torch.from_numpy(ids).to(self.device),
                                          torch.from_numpy(mask).to(self.device)).float().cpu().numpy()
                if progress is not None:
                    progress(min(start + self.batch_size, len(order)), len(order))
        return out, truncated

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.spec["kind"] == TRANSFORMERS:
            return self.model(input_ids=ids, attention_mask=mask).logits
        return self.model(ids, mask)

    def predict(self, texts: Sequence[str], progress=None) -> Predictions:
        """Calibrated probabilities softmax(logits / T) of every text, with its flags."""
        logits, truncated = self.logits(texts, progress)
        empty = np.array([not str(t).strip() for t in texts], dtype=bool)
        return Predictions(self.labels, softmax64(logits, self.temperature), logits, empty, truncated)


def load_model(folder: Path, spec: dict) -> nn.Module:
    """The folder's model in fp32: transformers' own class, or an encoder from its config with our head."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    if spec["kind"] == TRANSFORMERS:
        return AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
    if spec["kind"] != EMOCAL:
        raise ValueError(f"{folder / MODEL_FILE}: unknown kind {spec['kind']!r} (this loader knows "
                         f"{TRANSFORMERS} and {EMOCAL}); export the model again with this emocal")
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder / ENCODER_DIR), dtype=torch.float32)
    model = EmotionClassifier(encoder, int(spec["num_labels"]), pooling=spec["pooling"])
    model.load_state_dict(load_file(folder / WEIGHTS_FILE))
    return model
