"""Where a generation's Ray task runs, and which torch device it uses there.

Ray reuses a task's worker process for later tasks unless the function is declared with
`max_calls=1`, and it only declares that itself when `num_gpus` is in the decorator, not when
GPUs are asked for through `.options()` (ray/remote_function.py). A reused worker keeps its CUDA
context and cached memory, which Ray's fractional accounting cannot see, and stays on the device
it first initialised whatever Ray assigns it next. So a task that asks for GPUs runs in a worker
that exits after it, and takes its device from what Ray assigned (`ray.get_gpu_ids()`), never a
fixed `cuda:0`. This module imports neither MLflow nor the trainables, so `bench/gpu_check.py`
exercises the same placement on a GPU machine that has only torch and Ray.
"""
from __future__ import annotations

import logging
import os

import ray

_logger = logging.getLogger(__name__)


class StageTask:
    """A function as two Ray remote functions: reusable workers for CPU tasks, one-shot for GPU tasks."""

    def __init__(self, fn, num_returns: int = 1):
        self._cpu = ray.remote(num_returns=num_returns)(fn)
        self._gpu = ray.remote(num_returns=num_returns, max_calls=1)(fn)

    def options(self, cpus: float, gpus: float = 0.0):
        """The remote function to call with `.remote(...)`, asking Ray for these resources."""
        if gpus:
            return self._gpu.options(num_cpus=cpus, num_gpus=gpus)
        return self._cpu.options(num_cpus=cpus)


def cuda_index(gpu_id: str, visible: str | None) -> int:
    """torch's index of Ray's GPU `gpu_id`: CUDA_VISIBLE_DEVICES renumbers the devices it lists from 0."""
    if visible:
        listed = [v.strip() for v in visible.split(",")]
        if gpu_id in listed:
            return listed.index(gpu_id)
    return int(gpu_id)  # Ray was told not to set CUDA_VISIBLE_DEVICES: its ids are the machine's


def task_device(requested: str = "auto") -> tuple[str, dict]:
    """Inside a Ray task: the torch device to use, and what the task saw (for its result).

    "auto" means the first GPU Ray assigned to this task, or the CPU when it assigned none
    (a task without GPUs never touches one, even on a GPU machine). Ray can advertise GPUs a
    machine does not have (`ray start --num-gpus 4` on a CPU node): then the task says so and
    runs on the CPU.
    """
    ids = [str(i) for i in ray.get_gpu_ids()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    seen = {"gpu_ids": ",".join(ids), "cuda_visible_devices": visible if visible is not None else "(unset)",
            "cuda_index": cuda_index(ids[0], visible) if ids else None}
    if requested != "auto":
        device = requested
    elif not ids:
        device = "cpu"
    else:
        import torch

        if torch.cuda.is_available():
            device = f"cuda:{seen['cuda_index']}"
        else:
            _logger.warning("Ray assigned GPU %s to this task but torch sees no CUDA device here "
                            "(CUDA_VISIBLE_DEVICES=%s); running on the CPU", ",".join(ids), visible)
            device = "cpu"
    return device, {**seen, "device": device, "pid": os.getpid()}
