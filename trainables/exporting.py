"""A stage's weights -> an export folder that trainables/serving.py loads without emocal's sweep machinery.

docs/design.md, Export and serving. The folder holds the encoder and head weights
(safetensors), the encoder's config and tokenizer (`save_pretrained`), `calibration.json` and
`emocal_model.json`, and a copy of trainables/serving.py. A RoBERTa encoder with the first-token
head is RoBERTa's own `RobertaForSequenceClassification` (the head is `RobertaClassificationHead`:
dropout, dense, tanh, dropout, out_proj on <s>), so it is saved as one and loads with
`AutoModelForSequenceClassification.from_pretrained(folder)` alone; any other encoder (MiniLM's
mean pooling, a BERT) goes to `encoder/` with our head beside it.

Plain Python: no Ray, no MLflow.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from trainables import serving
from trainables.models import load_tokenizer, native_pooling, resolve_model_path


def transformers_state(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Our RoBERTa state under RobertaForSequenceClassification's names; the pooler it lacks is dropped
    (our head reads the first token's hidden state, never the pooler's output)."""
    out = {}
    for name, value in weights.items():
        if name.startswith("encoder.pooler."):
            continue
        if name.startswith("encoder."):
            out["roberta." + name[len("encoder."):]] = torch.from_numpy(np.asarray(value))
        else:  # dense.*, out_proj.*
            out["classifier." + name] = torch.from_numpy(np.asarray(value))
    return out


def write_export(folder: str | Path, weights: dict[str, np.ndarray], model_name: str, labels: list[str],
                 max_length: int, eval_batch_size: int, calibration: dict) -> Path:
    """Write an export folder.

    Args:
        folder: where; must not exist or be empty (an export never mixes two models' files).
        weights: the stage's state (trainables/models.py, state_to_numpy), as the store keeps it.
        model_name: the encoder the stage fine-tuned (its config and tokenizer are saved).
        labels: class names in the order of the logits.
        max_length: the training max_length: longer texts are cut as in training.
        eval_batch_size: the batch size the sweep evaluated with (same batches, same logits).
        calibration: calibration.json's content (orchestrator/export.py makes it).

    Returns:
        The folder.
    """
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; pass an empty or new folder (an export never mixes two models)")
    folder.mkdir(parents=True, exist_ok=True)
    path = resolve_model_path(model_name)
    pooling = native_pooling(model_name)
    config = AutoConfig.from_pretrained(path)
    load_tokenizer(model_name).save_pretrained(folder)
    if config.model_type == "roberta" and pooling == "first":
        kind = serving.TRANSFORMERS
        hf_config = AutoConfig.from_pretrained(path, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                               label2id={name: i for i, name in enumerate(labels)},
                                               architectures=["RobertaForSequenceClassification"])
        model = AutoModelForSequenceClassification.from_config(hf_config, dtype=torch.float32)
        model.load_state_dict(transformers_state(weights), strict=True)  # every weight of ours has a place
        model.save_pretrained(folder)
    else:
        kind = serving.EMOCAL
        config.save_pretrained(folder / serving.ENCODER_DIR)
        save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()},
                  folder / serving.WEIGHTS_FILE, metadata={"format": "pt"})
    model_spec = {"kind": kind, "num_labels": len(labels), "pooling": pooling, "max_length": max_length,
                  "eval_batch_size": eval_batch_size, "encoder": model_name}
    (folder / serving.MODEL_FILE).write_text(json.dumps(model_spec, indent=1) + "\n")
    (folder / serving.CALIBRATION_FILE).write_text(json.dumps({**calibration, "labels": list(labels)}, indent=1) + "\n")
    shutil.copyfile(serving.__file__, folder / serving.SERVING_COPY)
    return folder
