"""The MLflow model of an export: texts in, every class's calibrated probability, `label` and `confidence` out.

MLflow 3's models-from-code: `emocal export` logs this file as the model's code
(`log_model(python_model=<this file>)`), and MLflow runs it when the model loads, so nothing
is pickled. It imports only MLflow, pandas and the export folder's own copy of
trainables/serving.py (`emocal_serving.py`, an artifact of the model), never emocal itself: a
registered model loads and serves where emocal is not installed.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

TEXT_COLUMN = "text"
EXPORT_ARTIFACT = "export"  # the artifact key of the export folder


class CalibratedTextModel(PythonModel):
    """softmax(logits / T) of each text, T from the export's calibration.json."""

    def load_context(self, context) -> None:
        folder = Path(context.artifacts[EXPORT_ARTIFACT])
        spec = importlib.util.spec_from_file_location("emocal_serving", folder / "emocal_serving.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there while it runs
        spec.loader.exec_module(module)
        self.classifier = module.CalibratedClassifier(folder)

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            if TEXT_COLUMN not in model_input.columns:
                raise ValueError(f"the input has no column {TEXT_COLUMN!r} (it has {list(model_input.columns)}); "
                                 f"send {{\"dataframe_records\": [{{\"{TEXT_COLUMN}\": \"...\"}}]}}")
            texts = model_input[TEXT_COLUMN].fillna("").astype(str).tolist()
        else:
            texts = [str(t) for t in model_input]
        return pd.DataFrame(self.classifier.predict(texts).rows())


mlflow.models.set_model(CalibratedTextModel())
