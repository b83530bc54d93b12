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


def trials_s(run_dir: Path) -> float:
    """The sweep's trials phase in seconds (its sweep_seconds.json), for the figures of docs/faults.md."""
    import json

    return json.loads((Path(run_dir) / "sweep_seconds.json").read_text())["trials"]


class ClaimWatch:
    """Call `on_claim(pid, lock)` once, the moment trial `trial_key` claims generation `generation`
    (from a thread of the test process, while the generation trains); `seen_at` is when."""

    def __init__(self, stages: Path, trial_key: str, generation: int, timeout_s: float = 300):
        self.stages, self.timeout_s = Path(stages), timeout_s
        self._holder = re.compile(rf"^trial {re.escape(trial_key)} \(generation {generation}\) on .*, pid (\d+),")
        self.missed = f"no claim of generation {generation} by {trial_key} seen in {timeout_s:.0f} s"
        self.seen_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
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
                    self.seen_at = time.time()
                    self.on_claim(int(match.group(1)), lock)
                    return
            self._stop.wait(0.02)

    def on_claim(self, pid: int, lock: Path) -> None:
        raise NotImplementedError


class TrialKiller(ClaimWatch):
    """SIGKILL the process of trial `trial_key` once it claims generation `generation`.

    The holder is frozen (SIGSTOP) the moment its claim is seen, so how fast the machine trains
    cannot let the generation finish first (on CI a tiny generation took under the 2 s the first
    version waited); it is then checked to be unfinished and SIGKILLed. `killed` is the pid, or
    None with `missed` saying why."""

    killed: int | None = None  # the pid killed

    def on_claim(self, pid: int, lock: Path) -> None:
        try:
            os.kill(pid, signal.SIGSTOP)  # frozen where it is: it can neither finish nor clean up
        except ProcessLookupError:
            self.missed = f"pid {pid} (the holder of {lock.name}) was gone before the kill"
            return
        if (self.stages / lock.stem).exists():
            self.missed = f"{lock.stem} was stored before the kill"
            os.kill(pid, signal.SIGCONT)
            return
        os.kill(pid, signal.SIGKILL)
        self.killed = pid
