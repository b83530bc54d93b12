"""Durable storage of finished stages, keyed by the hash of everything that determines them.

A stage (one generation of one chain, with its evaluations) is a pure function of its key
(DESIGN.md), so a finished stage is never trained again: not by another trial of the sweep
that shares the prefix, not by a resumed sweep, not by a later sweep on the same store.
A stage directory appears whole or not at all (written to a temporary name, then renamed);
a per-key file lock lets exactly one process train a stage while the others wait for it.
Weights are safetensors, arrays are .npz read with allow_pickle=False, the rest is JSON.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

WEIGHTS, ARRAYS, RESULT, ARTIFACTS = "weights.safetensors", "arrays.npz", "result.json", "artifacts"
TRAINED_LOG = "trained.log"


class StageStore:
    """Finished stages under `root/<key>/`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.path(key) / RESULT).is_file()

    @contextlib.contextmanager
    def claim(self, key: str, poll_s: float = 1.0):
        """Hold the stage's lock: one trainer per key; others block here until it is released.

        The lock is an fcntl lock, released by the OS if its holder dies, so a killed trial
        never leaves a stage locked. Yields True when the caller must train the stage, False
        when another process finished it meanwhile.
        """
        lock_path = self.root / f"{key}.lock"
        with open(lock_path, "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(poll_s)
            try:
                yield not self.has(key)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def save(self, key: str, result: dict, weights: dict[str, np.ndarray] | None,
             arrays: dict[str, np.ndarray], artifacts_dir: str | Path | None = None) -> Path:
        final = self.path(key)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        if weights is not None:
            save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(tmp / WEIGHTS))
        np.savez(tmp / ARRAYS, **arrays)
        if artifacts_dir is not None and Path(artifacts_dir).is_dir():
            shutil.copytree(artifacts_dir, tmp / ARTIFACTS)
        (tmp / RESULT).write_text(json.dumps(result, indent=1, sort_keys=True))
        if final.exists():  # a half-written leftover of a killed run (no result.json)
            shutil.rmtree(final)
        os.replace(tmp, final)
        with open(self.root / TRAINED_LOG, "a") as log:  # one line per training: proves sharing
            log.write(f"{key}\n")
        return final

    def load_result(self, key: str) -> dict:
        return json.loads((self.path(key) / RESULT).read_text())

    def load_weights(self, key: str) -> dict[str, np.ndarray]:
        return load_file(str(self.path(key) / WEIGHTS))

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        with np.load(self.path(key) / ARRAYS, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def artifacts(self, key: str) -> Path:
        return self.path(key) / ARTIFACTS
