"""Links into the MLflow UI that open a sweep's current runs, as the sweep prints them."""
from __future__ import annotations

from urllib.parse import quote

from orchestrator.tracking import CURRENT, STATUS_TAG


def runs_view(experiment_id: str, chart: bool = False) -> str:
    """The UI's runs view of an experiment, showing current runs only, sorted by name (so a
    method's seeds sit together); its URL state carries the filter, which cannot be preset."""
    query = {"searchFilter": f"tags.`{STATUS_TAG}` = '{CURRENT}'", "orderByKey": "tags.`mlflow.runName`",
             "orderByAsc": "true"}
    if chart:
        query["compareRunsMode"] = "CHART"
    return f"#/experiments/{experiment_id}/runs?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


def mlflow_ui_hint(uri: str, experiment_id: str) -> str:
    """How to open the experiment's current runs in the MLflow UI (table, and charts per generation)."""
    table, charts = runs_view(experiment_id), runs_view(experiment_id, chart=True)
    if uri.startswith(("http://", "https://")):
        base = uri.rstrip("/")
        return f"MLflow runs:   {base}/{table}\nMLflow charts: {base}/{charts}"
    return (f"Open the MLflow UI:  mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000\n"
            f"  runs:   http://127.0.0.1:5000/{table}\n  charts: http://127.0.0.1:5000/{charts}\n"
            "  (Group by > tag method compares methods across seeds; each run's summary.png plots its generations)")
