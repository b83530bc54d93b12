"""--resume after a driver SIGKILLed while Tune wrote its experiment state: the cut file is moved
aside (kept) and an older state, or a fresh start, takes over; nothing finished is lost, since
finished stages are in the stage store (tests/test_faults.py runs the real kill)."""
from __future__ import annotations

import json

from orchestrator.sweep import _tune_state_readable


def test_a_cut_tune_state_is_moved_aside_and_the_older_one_used(tmp_path):
    older = tmp_path / "experiment_state-2026-12-03_10-00-00.json"
    older.write_text(json.dumps({"trial_data": []}))
    cut = tmp_path / "experiment_state-2026-12-03_11-00-00.json"
    cut.write_text('{"trial_data": [')
    assert _tune_state_readable(tmp_path)
    assert not cut.exists() and (tmp_path / (cut.name + ".unreadable")).read_text() == '{"trial_data": ['
    assert older.exists()


def test_an_empty_tune_state_alone_means_a_fresh_start(tmp_path):
    empty = tmp_path / "experiment_state-2026-12-03_11-00-00.json"
    empty.write_text("")
    assert not _tune_state_readable(tmp_path)
    assert (tmp_path / (empty.name + ".unreadable")).exists()
    assert not _tune_state_readable(tmp_path / "missing")


def test_a_readable_tune_state_is_left_alone(tmp_path):
    state = tmp_path / "experiment_state-2026-12-03_11-00-00.json"
    state.write_text(json.dumps({"trial_data": []}))
    assert _tune_state_readable(tmp_path) and state.exists()
