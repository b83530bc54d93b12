"""A disk that fills mid-sweep (issue 27): the run folder on a real, small tmpfs mounted by the test.

The sweep starts with room to spare (its disk check passes); when the csd trial claims its
second generation, a ballast file takes all but a few KiB of the filesystem, as another program
or another sweep would. That stage cannot be saved: its trial fails naming the folder and the
bytes needed, nothing half-written is ever taken for a stage, the sweep stops with its MLflow
runs not left RUNNING, and once the ballast is gone `--resume` ends with the numbers of a sweep
that met no fault.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import report_rows
from tests.faults import ClaimWatch, trials_s
from tests.test_sweep_e2e import mlflow_runs, run_sweep, tiny_spec

pytestmark = pytest.mark.slow
SIZE_MB = 32  # the tiny spec's run folder takes about 5 MB: the sweep starts, its disk check passed
LEFT_BYTES = 48 * 1024  # what the ballast leaves: less than the stage needs


@pytest.fixture
def small_disk():
    """A `SIZE_MB` tmpfs of our own (root, or a machine that allows the mount); skipped, saying why, elsewhere."""
    # outside pytest's basetemp: the mount point is ours alone, unmounted in the teardown
    point = Path(tempfile.mkdtemp(prefix="emocal-small-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0755", "tmpfs", str(point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a {SIZE_MB} MB tmpfs here ({mounted.stderr.strip() or 'mount failed'}): "
                    "the disk-full test needs root or a machine that allows the mount")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)
        point.rmdir()


class FillDisk(ClaimWatch):
    """Fill the filesystem of `stages` to `LEFT_BYTES` free the moment the claim is seen."""

    ballast: Path | None = None

    def on_claim(self, pid: int, lock: Path) -> None:
        self.ballast = self.stages.parent.parent / "ballast"
        free = shutil.disk_usage(self.stages).free
        with open(self.ballast, "wb") as f:
            f.truncate(0)
            chunk = b"\0" * (1 << 20)
            left = free - LEFT_BYTES
            while left > 0:
                left -= f.write(chunk[: min(len(chunk), left)])


def test_a_full_disk_fails_the_stage_clearly_keeps_nothing_half_written_and_resume_ends_equal(
        tmp_path, tiny_model, data_root, small_disk, undisturbed):
    # no Tune retries: each would train the stage again to fail the same way (the reference is unchanged:
    # resources are no part of a stage key)
    spec = {**tiny_spec(tiny_model, "full"), "methods": ["ce", "csd"], "resources": {"cpus_per_trial": 1, "max_failures": 0}}
    path = tmp_path / "full.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = small_disk / "runs"
    stages = runs / "full" / "stages"
    started = time.perf_counter()
    with FillDisk(stages, "isear-csd-seed0", generation=2) as filler:
        out = run_sweep(tmp_path, path, data_root, "--runs", str(runs))
    failed_s = time.perf_counter() - started
    assert filler.ballast is not None, filler.missed
    text = out.stdout + out.stderr
    assert out.returncode == 1, text[-4000:]
    # the stage that could not be saved: its folder, the bytes it needs and the bytes free are named
    match = re.search(rf"no space for stage (g2-\w+) in {re.escape(str(stages))}: it needs ([\d,]+) bytes and "
                      r"([\d,]+) are free", text)
    assert match, text[-4000:]
    key, needed, free = match[1], int(match[2].replace(",", "")), int(match[3].replace(",", ""))
    assert needed > free
    # nothing half-written: no folder of that stage, no temporary folder left, g1 whole and readable
    assert not (stages / key).exists()
    assert not [p for p in stages.iterdir() if p.name.startswith(f".{key}.")]
    assert (stages / "trained.log").read_text().split() == [k for k in (stages / "trained.log").read_text().split()
                                                            if k.startswith("g1-")]
    _, mlruns = mlflow_runs(tmp_path, "full")
    status = {r.data.tags["method"]: r.info.status for r in mlruns}
    assert status == {"ce": "FINISHED", "csd": "FAILED"}, status  # nothing left RUNNING

    filler.ballast.unlink()  # space freed
    started = time.perf_counter()
    again = run_sweep(tmp_path, path, data_root, "--runs", str(runs), "--resume")
    resumed_s = time.perf_counter() - started
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    trained = (stages / "trained.log").read_text().split()
    assert len(trained) == len(set(trained)) == 2 and trained[-1] == key  # g1 not trained again
    client, mlruns = mlflow_runs(tmp_path, "full")
    assert sorted(r.data.tags["method"] for r in mlruns) == ["ce", "csd"]
    for run in mlruns:
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "test_macro_f1")]
        assert sorted(steps) == list(range(1, int(run.data.tags["generations"]) + 1))
    assert report_rows(runs / "full") == undisturbed  # cell for cell
    print(f"\nfigures: disk full: failed after {failed_s:.1f} s, resumed in {resumed_s:.1f} s (trials phase "
          f"{trials_s(runs / 'full'):.1f} s); stage {key} needed "
          f"{needed:,} bytes with {free:,} free")
