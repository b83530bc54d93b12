"""Test-only fault injection: kill a trial's process from outside, as a dying worker would.

Nothing in the production path knows about it. A trial that claims a stage writes who it is into
the stage's lock file (trainables/store.py, `StageStore.claim`): "trial <key> (generation <g>)
on <host>, pid <pid>, since ...". `TrialKiller` watches the run's stage store from the test
process for that line and SIGKILLs the pid once, while the generation's task runs: the real
signal, in the real Ray actor, which a fixture could not patch (Ray starts it as a process of
its own).
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path


class TrialKiller:
    """SIGKILL the process of trial `trial_key` once it claims generation `generation`."""

    def __init__(self, stages: Path, trial_key: str, generation: int, delay_s: float = 2.0, timeout_s: float = 300):
        self.stages, self.delay_s, self.timeout_s = Path(stages), delay_s, timeout_s
        self._holder = re.compile(rf"^trial {re.escape(trial_key)} \(generation {generation}\) on .*, pid (\d+),")
        self.killed: int | None = None  # the pid killed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "TrialKiller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        deadline = time.time() + self.timeout_s
        while not self._stop.is_set() and time.time() < deadline:
            for lock in self.stages.glob("*.lock") if self.stages.is_dir() else ():
                try:
                    match = self._holder.match(lock.read_text())
                except OSError:
                    continue
                if match:
                    self._stop.wait(self.delay_s)  # let the generation get going
                    if (self.stages / lock.stem).exists():
                        raise AssertionError(f"{lock.stem} was stored before the kill; lower delay_s")
                    self.killed = int(match.group(1))
                    os.kill(self.killed, signal.SIGKILL)
                    return
            self._stop.wait(0.05)
