"""GPU placement, emulated on a CPU machine: Ray advertises GPUs it does not have and sets
CUDA_VISIBLE_DEVICES per task, so what each task saw can be checked without a GPU (the lent
GPU's figures are bench/gpu_check.py's)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import ray

from orchestrator.placement import StageTask, cuda_index, task_device


def _probe(rendezvous: str | None = None, tasks: int = 1):
    """What a task saw; with a rendezvous folder, also whether all `tasks` ran at the same time."""
    device, seen = task_device("auto")
    together = None
    if rendezvous:
        Path(rendezvous, str(os.getpid())).touch()
        deadline = time.time() + 60
        while len(list(Path(rendezvous).iterdir())) < tasks and time.time() < deadline:
            time.sleep(0.05)
        together = len(list(Path(rendezvous).iterdir())) >= tasks
    return {**seen, "device": device, "pid": os.getpid(), "together": together}


probe = StageTask(_probe)


@pytest.fixture(scope="module")
def fake_gpus():  # a Ray instance: the tests that use it are slow
    ray.init(address="local", num_cpus=4, num_gpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_cuda_index_follows_cuda_visible_devices():
    assert cuda_index("2", "2,3") == 0
    assert cuda_index("3", "2,3") == 1
    assert cuda_index("1", None) == 1  # Ray told not to set the variable: ids are the machine's


@pytest.mark.slow
@pytest.mark.parametrize("share, tasks", [(0.25, 4), (0.5, 2)])
def test_fractional_gpu_tasks_see_what_ray_gave_them(fake_gpus, tmp_path, share, tasks):
    seen = ray.get([probe.options(cpus=1, gpus=share).remote(str(tmp_path), tasks) for _ in range(tasks)])
    for s in seen:
        ids = s["gpu_ids"].split(",")
        assert len(ids) == 1 and ids[0] in ("0", "1"), s  # one GPU, one of the two advertised
        assert s["cuda_visible_devices"] == s["gpu_ids"], s  # Ray narrowed the task to its GPU
        assert s["cuda_index"] == 0, s  # so torch's cuda:0 is the GPU Ray assigned
        assert s["device"] == "cpu", s  # no CUDA on this machine: said, and ran on the CPU
        assert s["together"], "the fractional tasks should hold their GPU shares at the same time"


@pytest.mark.slow
def test_a_gpu_task_never_reuses_a_worker(fake_gpus):
    """A reused worker would keep its CUDA context and cached memory, and its first device."""
    pids = [ray.get(probe.options(cpus=1, gpus=0.25).remote())["pid"] for _ in range(3)]
    assert len(set(pids)) == 3, pids


@pytest.mark.slow
def test_a_task_without_gpus_stays_on_the_cpu(fake_gpus):
    s = ray.get(probe.options(cpus=1).remote())
    assert s["gpu_ids"] == "" and s["device"] == "cpu", s
