"""The sweep's only MLflow writer: a Tune callback in the driver that logs finished stages.

Trials never open the tracking store. A trial reports to Tune which stage each generation is;
this callback, in the driver process, reads that stage's result and artifacts from the stage
store and logs them to the trial's run (made by `tracking.sync_runs`). So a SQLite file or an
artifact folder on the driver's disk works when trials run on other nodes, many trials never
write one SQLite file at once, and a generation is logged once however often its trial was
retried or restored (logged steps are looked up first). The stage store is the source of
truth: whatever it holds and MLflow lacks (a driver killed between a report and its logging)
is logged at the trial's end and after the sweep (`catch_up_all`).

Tune pickles its callbacks with the experiment and restores them on `--resume`, so this one
holds only the path of a state file that each sweep start rewrites (the tracking URI, run ids,
and every trial's stages); an MLflow failure is logged as a warning and never stops the sweep.
"""
from __future__ import annotations

import json
import logging
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


class RunRecorder(tune.Callback):
    """Logs each finished generation of each trial to its MLflow run; finishes runs."""

    def __init__(self, state_path: str | Path):
        self.state_path = str(state_path)
        self._state: dict | None = None
        self._runs: dict[str, TrialRun] = {}
        self._logged: dict[str, set[int]] = {}
        self._stores: dict[str, StageStore] = {}

    # Tune's hooks (driver process)
    def setup(self, **info):
        self._load()

    def on_trial_start(self, iteration, trials, trial, **info):
        self._guard(trial, lambda key: self._run(key).start())

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._guard(trial, lambda key: self._run(key).start())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._guard(trial, self.catch_up)

    def on_trial_complete(self, iteration, trials, trial, **info):
        # also called for trials stopped by Ctrl-C: FINISHED only when every generation is in
        self._guard(trial, lambda key: self._finish(key, "FINISHED") if self.catch_up(key) else None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._guard(trial, lambda key: (self.catch_up(key), self._finish(key, "FAILED")))

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
            self._run(key).log_generation(generation, self.stage_metrics(store, stage), store.artifacts(stage))
            logged.add(generation)
        return True

    def stage_metrics(self, store: StageStore, stage: str) -> dict:
        """What a finished stage logs: its stored metrics."""
        return store.load_result(stage)["metrics"]

    def trial_key(self, trial) -> str:
        """The key of a Tune trial in the state file: the one its config names."""
        return trial.config.get("trial", "")

    def catch_up_all(self) -> None:
        """After the sweep: log what each trial finished; a trial with every generation in is FINISHED
        (also when Tune's callbacks did not run, e.g. an experiment restored from before this
        recorder existed); the sweep marks the rest KILLED."""
        for key in self._load()["trials"]:
            try:
                run = self._run(key)
                if self.catch_up(key) and run.client.get_run(run.run_id).info.status in ("RUNNING", "SCHEDULED"):
                    self._finish(key, "FINISHED")
            except Exception as exc:  # noqa: BLE001 - MLflow trouble must not hide the sweep's outcome
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

    def _guard(self, trial, action) -> None:
        key = self.trial_key(trial)
        try:
            action(key)
        except Exception as exc:  # noqa: BLE001 - a tracking failure must not stop training or hide its error
            _logger.warning("MLflow: could not record trial %s (%s: %s); its stages stay in the store and are "
                            "logged at the next result, the trial's end or --resume", key, type(exc).__name__, exc)

    def __getstate__(self):  # Tune pickles callbacks with the experiment: keep only the path
        return {"state_path": self.state_path}

    def __setstate__(self, d):
        self.__init__(d["state_path"])
