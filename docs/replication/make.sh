#!/usr/bin/env bash
# Regenerates everything in docs/replication/ from the replication's MLflow store.
# Run from the repository root where `python -m orchestrator.sweep specs/replication_cpu.yaml` ran
# (its store is ./mlflow.db unless MLFLOW_TRACKING_URI says otherwise).
set -euo pipefail
out=docs/replication
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$PWD/mlflow.db}"
python -m orchestrator.report replication_cpu --out "$out" > "$out/report.stdout"
python -m orchestrator.report replication_cpu --pick per-seed > "$out/report_per_seed_pick.md"
python -m orchestrator.figures replication_cpu --dataset isear --out "$out"
python -m orchestrator.claims replication_cpu --dataset isear --out "$out"  # writes $out/claims.md
python docs/replication/fill_readme.py
