"""Durable storage of finished stages, keyed by the hash of everything that determines them.

A stage (one generation of one chain, with its evaluations) is a pure function of its key
(docs/design.md), so a finished stage is never trained again: not by another trial of the sweep
that shares the prefix, not by a resumed sweep, not by a later sweep on the same store.
A stage directory appears whole or not at all (written to a temporary name, flushed to disk,
then renamed); a per-key file lock lets exactly one process train a stage while the others
wait for it. Weights are safetensors, arrays are .npz read with allow_pickle=False, the rest
is JSON.

What real clusters add (issue 12): a stage can be written twice (a Ray task retry, lineage
reconstruction, a stale lookup on NFS), so the first writer wins and a finished stage is never
replaced; disks and copies corrupt files, so every file's sha256 is recorded in `checksums.json`
and checked before a stage is used, and a stage that fails the check is set aside as
`<key>.corrupt-<time>` and reported missing, so it is trained again; writers get killed, so
their temporary folders are removed by the next store opened on the same root; disks fill, so a
stage that does not fit fails before it writes a byte (or when the disk fills under it),
naming the folder, the bytes it needs and the bytes free, and leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save_file

_logger = logging.getLogger(__name__)

WEIGHTS, ARRAYS, RESULT, ARTIFACTS = "weights.safetensors", "arrays.npz", "result.json", "artifacts"
CHECKSUMS = "checksums.json"  # relative path -> sha256 of every other file of the stage
# written when a stage's weights are removed because every stage that reads them is stored
# (its numbers stay; orchestrator/trial.py, release_read_handovers)
RELEASED = "weights.released"
TRAINED_LOG = "trained.log"
COMMIT_LOCK = ".commit.lock"  # held only around "is it there? then rename": first writer wins
WRITER_LOCK = ".writer.lock"  # inside a temporary folder, held while its writer is alive
# A temporary folder without a writer lock is either a few microseconds old (just made, or just
# about to be renamed) or left by code from before writer locks; only the latter gets this old.
STALE_TMP_S = 3600.0


class CorruptStageError(RuntimeError):
    """A stored file does not match its checksum; the stage has been set aside."""


class StoreFullError(RuntimeError):
    """A stage does not fit on the store's filesystem; nothing of it was kept."""

    def __init__(self, key: str, root: Path, needed: int, free: int):
        self.key, self.root, self.needed, self.free = key, str(root), needed, free
        super().__init__(
            f"no space for stage {key} in {root}: it needs {needed:,} bytes and {free:,} are free. Free at least "
            f"{max(needed - free, 0):,} bytes there (or move the run folder to a larger disk: --runs), then "
            "continue with --resume; the stages already stored are kept")

    def __reduce__(self):  # crosses Ray's task boundary with its numbers
        return type(self), (self.key, self.root, self.needed, self.free)


class StageWaitTimeout(RuntimeError):
    """A trial waited longer than it may for a stage that another process is training."""

    def __init__(self, key: str, lock_path: Path, timeout_s: float):
        try:
            holder = lock_path.read_text().strip() or "an unnamed process"
        except OSError:
            holder = "an unnamed process"
        super().__init__(
            f"waited {timeout_s / 3600:.2f} h for stage {key}, which {holder} is training (lock {lock_path}). "
            "If that trial is still at work (see the Ray dashboard), raise resources.stage_wait_hours in the spec "
            "and resume with --resume; if it is not, its process hangs: end it by its pid and resume.")


class StageStore:
    """Finished stages under `root/<key>/`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._verified: set[str] = set()  # a stage folder never changes once renamed in
        self.clean_temporary()

    def path(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        """Whether a finished, intact stage is stored; a corrupt one is set aside and reported missing.

        The checksums are read once per key and store object: a finished folder is never
        rewritten, and every load checks the bytes it reads again.
        """
        if not (self.path(key) / RESULT).is_file():
            return False
        if key in self._verified:
            return True
        try:
            inode = os.stat(self.path(key)).st_ino
        except FileNotFoundError:
            return False
        problem = self._check(key)
        if problem is None:
            self._verified.add(key)
            return True
        self._set_aside(key, inode, problem)
        return self.has(key)  # another writer may have stored a good copy meanwhile

    @contextlib.contextmanager
    def claim(self, key: str, poll_s: float = 1.0, timeout_s: float | None = None, holder: str = ""):
        """Hold the stage's lock: one trainer per key; others block here until it is released.

        The lock is an fcntl lock, released by the OS if its holder dies, so a killed trial
        never leaves a stage locked. The holder writes who it is into the lock file, so a waiter
        that gives up after `timeout_s` can say whom it waited for. Yields True when the caller
        must train the stage, False when another process finished it meanwhile.
        """
        lock_path = self.root / f"{key}.lock"
        lock_path.touch(exist_ok=True)
        started = time.monotonic()
        with open(lock_path, "r+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if timeout_s is not None and time.monotonic() - started > timeout_s:
                        raise StageWaitTimeout(key, lock_path, timeout_s) from None
                    time.sleep(poll_s)
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{holder or 'pid ' + str(os.getpid())}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
                handle.flush()
                yield not self.has(key)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def save(self, key: str, result: dict, weights: dict[str, np.ndarray] | None,
             arrays: dict[str, np.ndarray], artifacts_dir: str | Path | None = None) -> Path:
        """Store a stage unless an intact copy is already there (then this copy is dropped).

        Every file and folder is fsync'ed before the rename that makes the stage visible, and
        the store folder after it, so a machine that crashes right after never shows a stage
        whose files are empty. A second writer (a retried or reconstructed Ray task) never
        touches the first writer's stage.
        """
        final = self.path(key)
        if self.has(key):
            _logger.info("stage %s is already stored; this copy is not kept", key)
            return final
        needed = _bytes_needed(result, weights, arrays, artifacts_dir)
        free = shutil.disk_usage(self.root).free
        if free < needed:
            raise StoreFullError(key, self.root, needed, free)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFullError(key, self.root, needed, shutil.disk_usage(self.root).free) from None
            raise
        writer_lock = _locked_file(tmp / WRITER_LOCK)
        try:
            self._write(tmp, result, weights, arrays, artifacts_dir)
            stored = self._commit(key, tmp)
        except OSError as exc:  # the disk filled under us (another writer, another program)
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise StoreFullError(key, self.root, needed, shutil.disk_usage(self.root).free) from None
        finally:
            os.close(writer_lock)
            shutil.rmtree(tmp, ignore_errors=True)  # gone already when it became the stage
        if not stored:
            _logger.info("stage %s was stored by another writer first; this copy is not kept", key)
            return final
        self._verified.add(key)
        try:
            with open(self.root / TRAINED_LOG, "a") as log:  # one line per stored stage: proves sharing
                log.write(f"{key}\n")
        except OSError as exc:  # the stage is stored whole; only its line in the log is missing
            _logger.warning("stage %s is stored, but %s could not be appended (%s)", key, TRAINED_LOG, exc)
        return final

    def weights_released(self, key: str) -> bool:
        return (self.path(key) / RELEASED).is_file()

    def release_weights(self, key: str, why: str) -> int:
        """Remove a stored stage's weights.safetensors, keeping everything else (its numbers, its
        training-set logits); returns the bytes freed (0: none were there).

        The marker is written before the weights go, and the checksum list loses them in one
        rename, so a reader checking the stage meanwhile never takes it for corrupt.
        """
        folder = self.path(key)
        weights = folder / WEIGHTS
        with self._commit_lock():
            if not weights.is_file():
                return 0
            size = weights.stat().st_size
            (folder / RELEASED).write_text(json.dumps({"bytes": size, "why": why,
                                                       "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
            sums_path = folder / CHECKSUMS
            if sums_path.is_file():
                sums = json.loads(sums_path.read_text())
                sums.pop(WEIGHTS, None)
                tmp = folder / f".{CHECKSUMS}.tmp"
                tmp.write_text(json.dumps(sums, indent=1, sort_keys=True))
                os.replace(tmp, sums_path)
            weights.unlink()
            _fsync_dir(folder)
        return size

    @staticmethod
    def _write(tmp: Path, result: dict, weights: dict[str, np.ndarray] | None, arrays: dict[str, np.ndarray],
               artifacts_dir: str | Path | None) -> None:
        """Every file of a stage into its temporary folder, checksummed and flushed to disk."""
        if weights is not None:
            save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(tmp / WEIGHTS))
        np.savez(tmp / ARRAYS, **arrays)
        if artifacts_dir is not None and Path(artifacts_dir).is_dir():
            shutil.copytree(artifacts_dir, tmp / ARTIFACTS)
        (tmp / RESULT).write_text(json.dumps(result, indent=1, sort_keys=True))
        os.unlink(tmp / WRITER_LOCK)  # not part of the stage; the open descriptor keeps the lock
        sums = {str(p.relative_to(tmp)): _sha256(p.read_bytes()) for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=1, sort_keys=True))
        _fsync_tree(tmp)

    def load_result(self, key: str) -> dict:
        return json.loads(self._read(key, RESULT))

    def load_weights(self, key: str) -> dict[str, np.ndarray]:
        return load_safetensors(self._read(key, WEIGHTS))

    def load_arrays(self, key: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self._read(key, ARRAYS)), allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def artifacts(self, key: str) -> Path:
        return self.path(key) / ARTIFACTS

    def clean_temporary(self) -> list[Path]:
        """Remove the temporary folders of writers that died; returns what was removed.

        A live writer holds the flock on its folder's `.writer.lock`, and the OS drops it when
        the writer dies, so a folder whose lock can be taken is a leftover.
        """
        removed = []
        for tmp in self.root.glob(".*.*"):
            if not tmp.is_dir():
                continue
            try:
                fd = os.open(tmp / WRITER_LOCK, os.O_RDWR)
            except FileNotFoundError:
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - tmp.stat().st_mtime > STALE_TMP_S:
                        shutil.rmtree(tmp, ignore_errors=True)
                        removed.append(tmp)
                continue
            except OSError:  # gone meanwhile, or not ours to open
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if tmp.exists():  # not renamed into a stage meanwhile
                    shutil.rmtree(tmp, ignore_errors=True)
                    removed.append(tmp)
            except BlockingIOError:
                pass  # its writer is alive
            finally:
                os.close(fd)
        for tmp in removed:
            _logger.warning("removed %s, the temporary folder of a writer that died", tmp)
        return removed

    # ---- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _commit_lock(self):
        with open(self.root / COMMIT_LOCK, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _commit(self, key: str, tmp: Path) -> bool:
        """Rename `tmp` to the stage's folder unless a finished stage is there; True if it was renamed."""
        final = self.path(key)
        with self._commit_lock():
            if (final / RESULT).is_file():
                return False
            if final.exists():  # no result.json: a half-written leftover (e.g. an interrupted copy)
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync_dir(self.root)
        return True

    def _check(self, key: str) -> str | None:
        """What is wrong with a stored stage's files, or None when they match their checksums."""
        folder = self.path(key)
        try:
            sums = json.loads((folder / CHECKSUMS).read_text())
        except FileNotFoundError:
            return None  # stored before checksums existed: nothing to check against
        except (OSError, ValueError) as exc:
            return f"{CHECKSUMS} is unreadable ({exc})"
        for name, expected in sorted(sums.items()):
            try:
                digest = _sha256((folder / name).read_bytes())
            except FileNotFoundError:
                if name == WEIGHTS and (folder / RELEASED).is_file():
                    continue  # released while this check ran: read the list before it lost them
                return f"{name} is unreadable (missing)"
            except OSError as exc:
                return f"{name} is unreadable ({exc})"
            if digest != expected:
                return f"{name} has sha256 {digest[:12]}…, stored as {expected[:12]}…"
        return None

    def _read(self, key: str, name: str) -> bytes:
        """A file of a stored stage, checked against its checksum (a mismatch sets the stage aside)."""
        folder = self.path(key)
        inode = os.stat(folder).st_ino
        data = (folder / name).read_bytes()
        try:
            expected = json.loads((folder / CHECKSUMS).read_text()).get(name)
        except FileNotFoundError:
            expected = None
        except (OSError, ValueError) as exc:
            self._set_aside(key, inode, f"{CHECKSUMS} is unreadable ({exc})")
            raise CorruptStageError(f"stage {key}: {CHECKSUMS} is unreadable; set aside, train it again") from None
        if expected is not None and _sha256(data) != expected:
            problem = f"{name} does not match its checksum"
            self._set_aside(key, inode, problem)
            raise CorruptStageError(f"stage {key}: {problem}; set aside, it is trained again on the next try")
        return data

    def _set_aside(self, key: str, inode: int, problem: str) -> None:
        """Rename a corrupt stage to `<key>.corrupt-<time>`, unless it was replaced since it was read."""
        self._verified.discard(key)
        final = self.path(key)
        aside = self.root / f"{key}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}"
        with self._commit_lock():
            try:
                if os.stat(final).st_ino != inode:
                    return  # someone set it aside already and a new copy is in its place
                os.rename(final, aside)
            except FileNotFoundError:
                return  # set aside by another process
            _fsync_dir(self.root)
        _logger.warning("stage %s is corrupt (%s): moved to %s; it will be trained again", key, problem, aside.name)


def _bytes_needed(result: dict, weights: dict[str, np.ndarray] | None, arrays: dict[str, np.ndarray],
                  artifacts_dir: str | Path | None) -> int:
    """What a stage's files take: its arrays' bytes (uncompressed, as saved), its artifacts', its
    JSON, and a block per file and some headroom for headers and the checksums."""
    tensors = [*(weights or {}).values(), *arrays.values()]
    files = [p for p in Path(artifacts_dir).rglob("*") if p.is_file()] if artifacts_dir and Path(artifacts_dir).is_dir() else []
    body = sum(np.asarray(a).nbytes for a in tensors) + sum(p.stat().st_size for p in files)
    body += len(json.dumps(result, indent=1, sort_keys=True, default=str))
    return body + 4096 * (len(files) + 8) + 64 * 1024


def _locked_file(path: Path) -> int:
    """A descriptor holding the flock on a new file at `path`, locked before the name appears,
    so that nobody can find the file unlocked and take it for a dead writer's."""
    fd, staging = tempfile.mkstemp(prefix=".lock-", dir=path.parent)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(staging, path)
    return fd


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_tree(folder: Path) -> None:
    """fsync every file, then every folder (deepest first), so their names are on disk too."""
    folders = [folder]
    for path in folder.rglob("*"):
        if path.is_dir():
            folders.append(path)
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for path in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        _fsync_dir(path)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a folder; their renames are then as safe as they get
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
