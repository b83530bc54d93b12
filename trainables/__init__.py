"""Training work of emocal: data, models, the one training loop, methods, calibration.

Nothing in here imports `orchestrator`; `trainables.train` imports neither Ray nor MLflow,
so every method runs and is tested in a plain Python process.
"""
