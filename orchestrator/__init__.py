"""The sweep side of emocal: specs, plans, Ray Tune, MLflow tracking and reports."""
