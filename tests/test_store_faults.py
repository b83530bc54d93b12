"""The stage store under real faults (issue 12), without Ray: corrupt files are caught and set
aside, the first of two racing writers wins and keeps its stage, killed writers' temporary
folders are removed, and a trial waiting for a stage that diverged does not train it again."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from trainables import store as store_module
from trainables.store import ARRAYS, CHECKSUMS, RESULT, WEIGHTS, CorruptStageError, StageStore

ROOT = Path(__file__).resolve().parents[1]
KEY = "g1-0123456789abcdef0123"


def save(store: StageStore, writer: int, artifacts: Path | None = None) -> None:
    """A small stage whose every file says which writer made it."""
    store.save(KEY, {"key": KEY, "writer": writer}, {"w": np.full((64, 64), writer, np.float32)},
               {"logits": np.full(8, writer, np.float32)}, artifacts)


def stored_writer(root: Path) -> int:
    """Which writer's stage a fresh store finds, with every file of it agreeing."""
    fresh = StageStore(root)
    assert fresh.has(KEY)
    writer = fresh.load_result(KEY)["writer"]
    assert (fresh.load_weights(KEY)["w"] == writer).all() and (fresh.load_arrays(KEY)["logits"] == writer).all()
    return writer


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != KEY)


@pytest.mark.parametrize("name", [WEIGHTS, ARRAYS, RESULT, "artifacts/plot.png"])
def test_a_corrupt_file_is_set_aside_and_reported_missing(tmp_path, caplog, name):
    arts = tmp_path / "arts"
    arts.mkdir()
    (arts / "plot.png").write_bytes(b"\x89PNG not really")
    store = StageStore(tmp_path / "stages")
    save(store, 1, arts)
    path = store.path(KEY) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit pattern, as a bad disk or a torn copy leaves
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="trainables.store"):
        assert not StageStore(store.root).has(KEY)
    assert not store.path(KEY).exists()
    aside = [p.name for p in store.root.iterdir() if p.name.startswith(f"{KEY}.corrupt-")]
    assert len(aside) == 1 and (store.root / aside[0] / name).is_file()  # kept for a post-mortem, never used
    assert any("corrupt" in r.getMessage() and name in r.getMessage() for r in caplog.records)

    save(store, 2)  # retrained: the new copy is stored in its place
    assert stored_writer(store.root) == 2


def test_a_load_checks_the_bytes_it_reads(tmp_path):
    """A file corrupted after the stage was found is still never used: the load refuses it."""
    store = StageStore(tmp_path)
    save(store, 1)
    assert store.has(KEY)
    with open(store.path(KEY) / WEIGHTS, "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\1")
    with pytest.raises(CorruptStageError, match="set aside"):
        store.load_weights(KEY)
    assert not store.has(KEY) and not store.path(KEY).exists()


def test_a_stage_stored_before_checksums_is_still_read(tmp_path):
    store = StageStore(tmp_path)
    save(store, 1)
    (store.path(KEY) / CHECKSUMS).unlink()
    assert stored_writer(tmp_path) == 1


def test_a_second_save_never_replaces_a_finished_stage(tmp_path):
    store = StageStore(tmp_path)
    save(store, 1)
    inode = store.path(KEY).stat().st_ino
    save(StageStore(tmp_path), 2)  # a Ray task retry, or lineage reconstruction of the weights
    assert store.path(KEY).stat().st_ino == inode and stored_writer(tmp_path) == 1
    assert (tmp_path / "trained.log").read_text().split() == [KEY]
    assert leftovers(tmp_path) == []


def test_the_first_of_two_overlapping_writers_wins(tmp_path, monkeypatch):
    """Writer 2 has written its files when writer 1 stores the stage; writer 2 must drop its copy."""
    written, first_done = threading.Event(), threading.Event()
    commit = StageStore._commit

    def slow_commit(self, key, tmp):
        if threading.current_thread().name == "second":
            written.set()
            assert first_done.wait(30)
        return commit(self, key, tmp)

    monkeypatch.setattr(StageStore, "_commit", slow_commit)
    second = threading.Thread(target=save, args=(StageStore(tmp_path), 2), name="second")
    second.start()
    assert written.wait(30)
    save(StageStore(tmp_path), 1)
    first_done.set()
    second.join(30)
    assert stored_writer(tmp_path) == 1
    assert (tmp_path / "trained.log").read_text().split() == [KEY]
    assert leftovers(tmp_path) == []


def _race_writer(root: str, writer: int, start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    save(StageStore(root), writer)


@pytest.mark.parametrize("how", ["threads", "processes"])
def test_racing_writers_leave_one_intact_stage(tmp_path, how):
    start_at = time.time() + (0.2 if how == "threads" else 3.0)  # spawned processes need time to import
    if how == "threads":
        workers = [threading.Thread(target=_race_writer, args=(str(tmp_path), i, start_at)) for i in range(4)]
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        workers = [ctx.Process(target=_race_writer, args=(str(tmp_path), i, start_at)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    if how == "processes":
        assert [w.exitcode for w in workers] == [0] * 4
    winners = (tmp_path / "trained.log").read_text().split()
    assert winners == [KEY]  # stored once
    assert stored_writer(tmp_path) in range(4)
    assert leftovers(tmp_path) == []


KILLED_WRITER = """
import sys, time
import numpy as np
from trainables.store import StageStore
np.savez = lambda *a, **k: time.sleep(600)  # hangs mid-write, after the weights
StageStore(sys.argv[1]).save("{key}", {{}}, {{"w": np.zeros(3, np.float32)}}, {{"a": np.zeros(3)}})
"""


def test_a_killed_writers_temporary_folder_is_cleaned(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(key=KEY), str(tmp_path)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob(f".{KEY}.*/{WEIGHTS}")):
            assert proc.poll() is None and time.time() < deadline, "the writer never started writing"
            time.sleep(0.1)
        (tmp_dir,) = tmp_path.glob(f".{KEY}.*")
        assert StageStore(tmp_path).clean_temporary() == [] and tmp_dir.is_dir()  # its writer is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    StageStore(tmp_path)  # opening the store cleans up
    assert not tmp_dir.exists() and not StageStore(tmp_path).has(KEY)


def test_an_old_temporary_folder_without_a_writer_lock_is_cleaned(tmp_path):
    """Writers from before writer locks left folders with no lock; old ones are removed, new ones kept."""
    old, new = tmp_path / f".{KEY}.old1", tmp_path / f".{KEY}.new1"
    for folder in (old, new):
        folder.mkdir()
        (folder / WEIGHTS).write_bytes(b"partial")
    past = time.time() - store_module.STALE_TMP_S - 60
    os.utime(old, (past, past))
    StageStore(tmp_path)
    assert not old.exists() and new.is_dir()


def test_a_half_written_stage_folder_is_replaced(tmp_path):
    (tmp_path / KEY).mkdir()
    (tmp_path / KEY / WEIGHTS).write_bytes(b"partial")  # no result.json: never finished
    store = StageStore(tmp_path)
    assert not store.has(KEY)
    save(store, 3)
    assert stored_writer(tmp_path) == 3


def test_a_waiter_rechecks_diverged_after_it_gets_the_lock(tmp_path, monkeypatch):
    """The trial holding the lock diverged while we waited: we raise, we do not train it again."""
    from orchestrator import trial
    from trainables.train import DivergedError

    def no_training(*args, **kwargs):
        raise AssertionError("a diverged stage was trained again")

    monkeypatch.setattr(trial, "run_stage_task", type("Stub", (), {"options": no_training}))
    store = StageStore(tmp_path)
    spec = type("Spec", (), {"key": lambda self: KEY, "parent": None, "generation": 1})()
    errors: list[BaseException] = []

    def waiter():
        try:
            trial._Chain(store, 1.0, 0.0, "isear-ce-seed0").ensure(spec, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    with store.claim(KEY):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)  # the waiter has checked for the marker and blocks on the lock
        (tmp_path / f"{KEY}.diverged").write_text("generation 1 of isear-ce-seed0: loss nan")
    thread.join(30)
    assert len(errors) == 1 and isinstance(errors[0], DivergedError), errors
    assert "loss nan" in str(errors[0])


def test_a_waiter_gives_up_after_its_bound_and_names_whom_it_waited_for(tmp_path):
    """A trial that waits for another's stage waits at most resources.stage_wait_hours, then says
    which trial holds the stage and what to do, instead of holding its slot for ever."""
    from trainables.store import StageWaitTimeout

    store = StageStore(tmp_path)
    with store.claim(KEY, holder="trial isear-ce-seed0 (generation 1) on node-a, pid 4242"):
        started = time.monotonic()
        with pytest.raises(StageWaitTimeout, match=r"isear-ce-seed0 \(generation 1\) on node-a, pid 4242.*"
                                                   r"stage_wait_hours"):
            with store.claim(KEY, poll_s=0.05, timeout_s=0.3):
                pass
        assert time.monotonic() - started < 5
    with store.claim(KEY, timeout_s=0.3) as must_train:  # released: the next claimant gets it at once
        assert must_train


def test_released_weights_leave_an_intact_stage_without_a_handover(tmp_path):
    """A teacher whose students are all stored loses its weights (issue 25): the stage stays whole
    for every check, reports no handover, and a checker that read the old checksum list while
    the weights went still finds it intact."""
    from trainables.stage import HANDOVER_PARTS, load_handover
    from trainables.store import RELEASED

    store = StageStore(tmp_path)
    store.save(KEY, {"key": KEY, "kept": list(HANDOVER_PARTS)}, {"w": np.ones((64, 64), np.float32)},
               {"train_logits": np.ones((4, 2), np.float32), "test_logits": np.zeros((3, 2), np.float32)})
    old_sums = (tmp_path / KEY / CHECKSUMS).read_text()
    size = (tmp_path / KEY / WEIGHTS).stat().st_size
    assert load_handover(store, KEY) is not None
    assert store.release_weights(KEY, "every reader stored") == size
    assert not (tmp_path / KEY / WEIGHTS).exists() and store.weights_released(KEY)
    assert store.release_weights(KEY, "again") == 0  # nothing left to free
    fresh = StageStore(tmp_path)
    assert fresh.has(KEY) and fresh.load_arrays(KEY)["test_logits"].shape == (3, 2)  # its numbers stay
    assert load_handover(fresh, KEY) is None  # a student that needs it trains the stage again
    (tmp_path / KEY / CHECKSUMS).write_text(old_sums)  # what a checker mid-release had read
    assert StageStore(tmp_path).has(KEY)
    late = StageStore(tmp_path / "handovers")  # a late handover released the same way is no handover either
    late.save(KEY, {"key": KEY, "kept": list(HANDOVER_PARTS)}, {"w": np.ones((2, 2), np.float32)},
              {"train_logits": np.ones((4, 2), np.float32)})
    assert load_handover(StageStore(tmp_path), KEY) is not None
    late.release_weights(KEY, "every reader stored")
    assert load_handover(StageStore(tmp_path), KEY) is None
    (tmp_path / KEY / RELEASED).unlink()  # no marker: a missing weights file is corruption
    assert not StageStore(tmp_path).has(KEY)
