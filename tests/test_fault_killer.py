"""The test-only fault injector (tests/faults.py) kills the process that holds the stage's claim,
and only that trial's claim of that generation."""
from __future__ import annotations

import subprocess
import sys
import time

from tests.faults import TrialKiller


def test_the_killer_sigkills_the_holder_of_that_trials_generation_only(tmp_path):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with TrialKiller(tmp_path, "isear-csd-seed0", generation=2, timeout_s=20) as killer:
            (tmp_path / "g2-other.lock").write_text(f"trial isear-csd-seed0 (generation 1) on h, pid {bystander.pid}, "
                                                    "since now\n")
            (tmp_path / "g2-mine.lock").write_text(f"trial isear-csd-seed0 (generation 2) on h, pid {victim.pid}, "
                                                   "since now\n")
            assert victim.wait(timeout=15) == -9  # SIGKILL
        assert killer.killed == victim.pid, killer.missed
        time.sleep(0.2)
        assert bystander.poll() is None
    finally:
        for p in (victim, bystander):
            p.kill()
            p.wait()
