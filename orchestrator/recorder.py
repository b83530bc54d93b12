"""The sweep's only MLflow writer: a Tune callback in the driver that logs finished stages.

Trials never open the tracking store. A trial reports to Tune which stage each generation is;
this callback, in the driver process, reads that stage's result and artifacts from the stage
store and logs them to the trial's run (made by `tracking.sync_runs`). So a SQLite file or an
artifact folder on the driver's disk works when trials run on other nodes, many trials never
write one SQLite file at once, and a generation is logged once however often its trial was
retried or restored (logged steps are looked up first). The stage store is the source of
truth: whatever it holds and MLflow lacks (a driver killed between a report and its logging)
is logged at the trial's end and after the sweep (`catch_up_all`).

Training never waits on MLflow: Tune's hooks run in its event loop, and a trial's report
waits until the driver has taken it, so the hooks only queue the work for one writer thread per
run folder (`_Writer`), which retries with growing pauses while the tracking server is away.
After the trials the sweep waits a while for that queue (`flush`); a server still away then is
said, and `emocal record NAME` logs what MLflow lacks later, from the stage store, once.

Tune pickles its callbacks with the experiment and restores them on `--resume`, so this one
holds only the path of a state file that each sweep start rewrites (the tracking URI, run ids,
and every trial's stages); an MLflow failure is logged as a warning and never stops the sweep.
"""
from __future__ import annotations

import collections
import json
import logging
import threading
from pathlib import Path

from ray import tune

from orchestrator.tracking import TrialRun
from trainables.store import StageStore

_logger = logging.getLogger(__name__)


def write_state(path: Path, uri: str, runs: dict[str, str], fingerprints: dict[str, str],
                stages: dict[str, list[tuple[int, str]]], stores: dict[str, str]) -> Path:
    """What the recorder needs, in the run folder: trial key -> run id, fingerprint, (generation, stage key)s, store."""
    path.write_text(json.dumps({"uri": uri, "trials": {
        k: {"run_id": runs[k], "fingerprint": fingerprints[k], "stages": stages[k], "store": stores[k]} for k in runs}},
        indent=1))
    return path


class _Writer:
    """The driver's one MLflow writer per run folder: queued work done in order, off Tune's loop.

    A failed item stays first in the queue and is tried again after a pause that doubles up to
    RETRY_MAX_S, so a server that went away and came back gets everything, in order, once (a
    generation is logged only when its run lacks it)."""

    RETRY_FIRST_S, RETRY_MAX_S = 1.0, 5.0  # a failed request to a server that is away costs milliseconds

    def __init__(self):
        self._items: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._busy = False
        self.last_error: str | None = None  # the failure the queue waits on, None when it moves
        threading.Thread(target=self._loop, name="emocal-mlflow-writer", daemon=True).start()

    def submit(self, what: str, work) -> None:
        with self._cv:
            self._items.append((what, work))
            self._cv.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until the queue is empty (True) or `timeout_s` passed (False)."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._items and not self._busy, timeout=timeout_s)

    def _loop(self) -> None:
        pause = self.RETRY_FIRST_S
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._items))
                what, work = self._items[0]
                self._busy = True
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - kept, and tried again: MLflow trouble never stops a sweep
                if self.last_error is None:
                    _logger.warning("MLflow: could not record %s (%s: %s); the stages stay in the store, and the "
                                    "driver tries again every %.0f s or less", what, type(exc).__name__, exc,
                                    self.RETRY_MAX_S)
                self.last_error = f"{type(exc).__name__}: {exc}"
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
                    self._cv.wait(pause)  # a flush may return meanwhile; a new item does not hurry us
                pause = min(pause * 2, self.RETRY_MAX_S)
                continue
            if self.last_error is not None:
                _logger.warning("MLflow: recording again (%s)", what)
            self.last_error, pause = None, self.RETRY_FIRST_S
            with self._cv:
                self._items.popleft()
                self._busy = False
                self._cv.notify_all()


_WRITERS: dict[str, _Writer] = {}  # state path -> its writer: Tune's restored copy of a callback shares it
_WRITERS_LOCK = threading.Lock()


def _writer(state_path: str) -> _Writer:
    with _WRITERS_LOCK:
        if state_path not in _WRITERS:
            _WRITERS[state_path] = _Writer()
        return _WRITERS[state_path]


class RunRecorder(tune.Callback):
    """Logs each finished generation of each trial to its MLflow run; finishes runs.

    Tune's hooks queue the work (`_Writer`); `catch_up`, `catch_up_all` and `flush` are the
    work itself, called directly after the sweep and by `emocal record`."""

    def __init__(self, state_path: str | Path):
        self.state_path = str(state_path)
        self._state: dict | None = None
        self._runs: dict[str, TrialRun] = {}
        self._logged: dict[str, set[int]] = {}
        self._stores: dict[str, StageStore] = {}
        self.generations_logged = 0  # by this object: what `emocal record` reports

    # Tune's hooks (driver process): queued, never waited for
    def setup(self, **info):
        self._load()

    def on_trial_start(self, iteration, trials, trial, **info):
        self._queue(trial, "the start", lambda key: self._run(key).start())

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._queue(trial, "the restart", lambda key: self._run(key).start())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._queue(trial, "a generation", self.catch_up)

    def on_trial_complete(self, iteration, trials, trial, **info):
        # also called for trials stopped by Ctrl-C: FINISHED only when every generation is in
        self._queue(trial, "the end", lambda key: self._finish(key, "FINISHED") if self.catch_up(key) else None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._queue(trial, "the failure", lambda key: (self.catch_up(key), self._finish(key, "FAILED")))

    def flush(self, timeout_s: float) -> bool:
        """Wait at most `timeout_s` for the queued MLflow work; whether all of it is done."""
        return _writer(self.state_path).flush(timeout_s)

    def pending_error(self) -> str | None:
        """The MLflow failure the queued work waits on, if any."""
        return _writer(self.state_path).last_error

    # the work
    def catch_up(self, key: str) -> bool:
        """Log every finished generation of the trial that its run lacks, in order; True when all are in."""
        state = self._load()["trials"][key]
        logged = self._logged.setdefault(key, self._run(key).logged_generations())
        store = self._store(state["store"])
        for generation, stage in state["stages"]:
            if generation in logged:
                continue
            if not store.has(stage):
                return False
            stored_ms = int((store.path(stage) / "result.json").stat().st_mtime * 1000)  # the same on every retry
            self._run(key).log_generation(generation, self.stage_metrics(store, stage), store.artifacts(stage),
                                          timestamp_ms=stored_ms)
            logged.add(generation)
            self.generations_logged += 1
        return True

    def stage_metrics(self, store: StageStore, stage: str) -> dict:
        """What a finished stage logs: its stored metrics."""
        return store.load_result(stage)["metrics"]

    def trial_key(self, trial) -> str:
        """The key of a Tune trial in the state file: the one its config names."""
        return trial.config.get("trial", "")

    def catch_up_all(self, strict: bool = False) -> None:
        """After the sweep: log what each trial finished; a trial with every generation in is FINISHED
        (also when Tune's callbacks did not run, e.g. an experiment restored from before this
        recorder existed); the sweep marks the rest KILLED. `strict`: raise MLflow's errors."""
        for key in self._load()["trials"]:
            try:
                run = self._run(key)
                if self.catch_up(key) and run.client.get_run(run.run_id).info.status in ("RUNNING", "SCHEDULED"):
                    self._finish(key, "FINISHED")
            except Exception as exc:  # noqa: BLE001 - MLflow trouble must not hide the sweep's outcome
                if strict:
                    raise
                _logger.warning("MLflow: could not log the finished generations of %s: %s", key, exc)

    def _finish(self, key: str, status: str) -> None:
        if status == "FINISHED":
            try:
                self._summary_figure(key)
            except Exception as exc:  # noqa: BLE001 - a missing picture must not leave the run unfinished
                _logger.warning("MLflow: no summary figure for %s: %s", key, exc)
        self._run(key).finish(status)

    def _summary_figure(self, key: str) -> None:
        """summary.png: the trial's F1 and ECE over its generations, so comparing runs in the MLflow
        UI needs no chart built by hand (its chart view cannot be preset)."""
        import math
        import tempfile

        from trainables.plots import series_plot

        state = self._load()["trials"][key]
        store = self._store(state["store"])
        per_gen = [(g, store.load_result(stage)["metrics"]) for g, stage in state["stages"]]
        gens = [g for g, _ in per_gen]

        def series(*names: str) -> dict:
            return {n: (gens, [m.get(n, math.nan) for _, m in per_gen], [math.nan] * len(gens))
                    for n in names if any(n in m for _, m in per_gen)}

        ood_ft = sorted({n for _, m in per_gen for n in m if n.startswith("ood_ft") and n.endswith("_ece")},
                        key=lambda n: float(n[len("ood_ft"):-len("_ece")]))
        panels = {"macro F1 (%)": series("val_macro_f1", "test_macro_f1"),
                  "ECE (%)": series("test_ece", "test_ece_ts", "ood_ece", *ood_ft)}
        with tempfile.TemporaryDirectory() as tmp:
            series_plot("generation", panels, Path(tmp) / "summary.png", title=key)
            for f in sorted(Path(tmp).iterdir()):
                self._run(key).client.log_artifact(self._run(key).run_id, str(f))

    def _store(self, root: str) -> StageStore:
        """One store object per root: it remembers which stages it verified, and opening one scans
        the folder for killed writers' leftovers, which a callback run per result should not repeat."""
        if root not in self._stores:
            self._stores[root] = StageStore(root)
        return self._stores[root]

    def _run(self, key: str) -> TrialRun:
        if key not in self._runs:
            t = self._load()["trials"][key]
            self._runs[key] = TrialRun(self._state["uri"], t["run_id"], t["fingerprint"])
        return self._runs[key]

    def _load(self) -> dict:
        if self._state is None:
            self._state = json.loads(Path(self.state_path).read_text())
        return self._state

    def _queue(self, trial, what: str, action) -> None:
        """Hand `action(key)` to the one MLflow writer thread: Tune's loop never waits on MLflow."""
        key = self.trial_key(trial)
        _writer(self.state_path).submit(f"{what} of trial {key}", lambda: action(key))

    def __getstate__(self):  # Tune pickles callbacks with the experiment: keep only the path
        return {"state_path": self.state_path}

    def __setstate__(self, d):
        self.__init__(d["state_path"])

