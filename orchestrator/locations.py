"""Where things are: the data root, the run folders, the MLflow store; one rule each, for every command.

- data root: `--data-root DIR`, else `$EMOCAL_DATA`; neither is an error (`LocationError`), the same
  one for `emocal sweep`, `plan` and `data`. No folder is guessed: a guess that happens to exist
  would train on data nobody named.
- run folders: `--runs DIR` (default `./runs`) is their parent; spec NAME runs in `DIR/NAME`.
- MLflow store: `--tracking-uri URI`, else `$MLFLOW_TRACKING_URI`, else the store the sweep recorded
  in the run folder (`DIR/NAME/tracking_uri.txt`, absolute), else `./mlflow.db`. A local store's
  path is made absolute, so `emocal report NAME --runs /abs/runs` reads the sweep's store from any
  directory, and trials that Tune runs in folders of their own open the driver's store.

This module imports nothing heavy: `emocal --help` resolves through it without MLflow.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

DATA_ENV = "EMOCAL_DATA"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_RUNS = "runs"
DEFAULT_STORE = "sqlite:///mlflow.db"  # relative: beside the working directory
TRACKING_URI_FILE = "tracking_uri.txt"  # in a run folder: the absolute URI its sweep logged to
RECORDER_STATE_FILE = "mlflow_runs.json"  # the recorder's state (orchestrator/recorder.py) also holds it


class LocationError(ValueError):
    """A folder or store a command needs is not given or not there; the message says what to pass."""


def resolve_data_root(arg: str | Path | None, must_exist: bool = True) -> Path:
    """The data root, absolute: `arg`, else $EMOCAL_DATA.

    Args:
        arg: `--data-root` as given (None: not given).
        must_exist: False for `emocal data fetch`, which may fill a new folder.

    Raises:
        LocationError: neither is given, or (with `must_exist`) the path is not a folder.
    """
    root = arg or os.environ.get(DATA_ENV)
    if not root:
        raise LocationError(f"no data root: pass --data-root DIR or set {DATA_ENV}=DIR "
                            "(the folder holding one folder per dataset; `emocal data fetch NAME` fills it)")
    path = Path(root).expanduser().resolve()
    if must_exist and not path.is_dir():
        raise LocationError(f"data root {path} is not a folder; pass --data-root DIR or set {DATA_ENV}=DIR")
    return path


def run_folder(runs: str | Path, name: str) -> Path:
    """The run folder of spec `name` under `runs` (the parent of run folders), absolute."""
    return Path(runs).expanduser().resolve() / name


def absolute_uri(uri: str, cwd: str | Path) -> str:
    """A local MLflow store URI with its path made absolute; any other URI as it is.

    Relative forms: `sqlite:///rel.db` (three slashes; four make it absolute), `file:rel` and
    `file:./rel`, and a bare path (`mlruns`, `./mlruns`, `../x/mlruns`), which MLflow reads as a
    file store. A query (`sqlite:///mlflow.db?timeout=30`) is kept.
    """
    base = Path(cwd)
    scheme, sep, rest = uri.partition(":")
    if scheme == "sqlite" and rest.startswith("///"):
        path, query_sep, query = rest[3:].partition("?")
        if path and not path.startswith("/") and path != ":memory:":
            return f"sqlite:///{(base / path).resolve()}{query_sep}{query}"
        return uri
    if scheme == "file" and not rest.startswith("//"):  # file:rel, file:./rel (file:/abs resolves to itself)
        return (base / rest).resolve().as_uri()
    if not sep or "/" in scheme:  # no scheme: a path, unless it is MLflow's own word
        return uri if uri in ("databricks", "databricks-uc", "uc") else str((base / uri).resolve())
    return uri


def record_tracking_uri(run_dir: Path, uri: str) -> Path:
    """Write the store a sweep logs to into its run folder, where readers look for it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / TRACKING_URI_FILE
    path.write_text(uri + "\n")
    return path


def recorded_tracking_uri(run_dir: Path) -> str | None:
    """The store recorded in a run folder; for run folders of older sweeps, the recorder state's."""
    path = run_dir / TRACKING_URI_FILE
    if path.is_file():
        return path.read_text().strip() or None
    state = run_dir / RECORDER_STATE_FILE
    if state.is_file():
        try:
            return json.loads(state.read_text()).get("uri") or None
        except (ValueError, AttributeError):
            return None
    return None


def resolve_tracking_uri(arg: str | None = None, run_dir: Path | None = None, cwd: str | Path | None = None,
                         must_exist: bool = False) -> str:
    """The MLflow store, by the rule of this module's docstring, with a local path made absolute.

    Args:
        arg: `--tracking-uri` as given (None: not given).
        run_dir: the run folder whose recorded store is the fallback (None: no run folder).
        cwd: what relative paths are relative to (default: the working directory).
        must_exist: for readers: when no source named a store, a missing `./mlflow.db` is an
            error rather than a new, empty store in whatever folder the reader ran in.

    Raises:
        LocationError: with `must_exist`, nothing named a store and there is no ./mlflow.db.
    """
    base = Path(cwd or os.getcwd())
    named = arg or os.environ.get(TRACKING_ENV) or (recorded_tracking_uri(run_dir) if run_dir else None)
    uri = absolute_uri(named or DEFAULT_STORE, base)
    if must_exist and not named and not (base / "mlflow.db").is_file():
        looked = f"{run_dir / TRACKING_URI_FILE} is not there, " if run_dir else ""
        raise LocationError(f"no MLflow store found: {looked}{TRACKING_ENV} is not set and there is no "
                            f"{base / 'mlflow.db'}; pass --tracking-uri URI, or --runs DIR (the sweep's parent of "
                            "run folders), or run from the folder the sweep ran in")
    return uri
