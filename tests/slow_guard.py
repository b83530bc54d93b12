"""Heavy work needs the slow mark, so `pytest -m "not slow"` stays a fast loop.

A test not marked slow that starts Ray, a server, a browser or a real model fails, saying so,
instead of quietly making the fast loop slow. Checked in every run (the full suite too), while
each unmarked test sets up its fixtures and runs:

- `ray.init` fails;
- a subprocess is refused before it starts when it is Ray (`ray start`, its gcs_server or
  raylet), a server (`mlflow server|ui`, postgres), a browser (chromium), docker, or a sweep
  that would train (`orchestrator.sweep` / `emocal sweep` with a data root, not a dry run or
  `--help`; a sweep's child processes are its own, so its command line is what is checked);
- a transformers model of more than TINY_PARAMETERS parameters (the packaged MiniLM, any hub
  model) fails once loaded; the tests' tiny encoders and LMs have about a million.

`ray.init` is patched when a test starts with ray imported (a module that uses it imports it);
Ray's own processes are refused as subprocesses either way.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import shlex
import subprocess
import sys
from contextlib import contextmanager

import pytest

PROGRAMS = {"ray", "gcs_server", "raylet", "chromium", "chromium-browser", "postgres", "pg_ctl", "initdb", "docker"}
TINY_PARAMETERS = 5_000_000
NOT_A_RUN = {"--dry-run", "--help", "-h", "plan"}


def _fail(item: pytest.Item, what: str) -> None:
    pytest.fail(f"{item.nodeid} {what} but is not marked slow: add @pytest.mark.slow (or `pytestmark = "
                f"pytest.mark.slow` for the module), so `pytest -m \"not slow\"` stays fast (docs/testing.md)",
                pytrace=False)


def heavy_command(args, env) -> str | None:
    """What makes this command line heavy, or None."""
    argv = shlex.split(os.fsdecode(args)) if isinstance(args, (str, bytes)) else [os.fsdecode(a) for a in args]
    if not argv:
        return None
    program, words = os.path.basename(argv[0]), argv[1:]
    if program in ("sh", "bash") and words[:1] == ["-c"] and len(words) > 1:  # shell=True
        return heavy_command(words[1], env)
    if program in ("runuser", "sudo", "su") and "--" in words:  # as another user (PostgreSQL refuses root)
        return heavy_command(words[words.index("--") + 1:], env)
    if program in PROGRAMS:
        return f"starts `{program}`"
    module = words[words.index("-m") + 1] if "-m" in words[:-1] else None
    if (program == "mlflow" or module == "mlflow") and {"server", "ui"} & set(words):
        return "starts an MLflow server"
    sweep = module == "orchestrator.sweep" or ("sweep" in words and (program == "emocal" or module in (
        "orchestrator", "orchestrator.cli")))
    if sweep and not NOT_A_RUN & set(words):
        has_data = any(w == "--data-root" or w.startswith("--data-root=") for w in words) or \
            (os.environ if env is None else env).get("EMOCAL_DATA")
        if has_data:
            return "runs a sweep (it starts Ray and trains)"
    return None


_current: pytest.Item | None = None  # the unmarked test setting up or running now


@contextmanager
def _guarded(item: pytest.Item):
    """While an unmarked test sets up or runs: heavy work fails it."""
    global _current
    if item.get_closest_marker("slow"):
        yield
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        if "ray" in sys.modules:
            monkeypatch.setattr(sys.modules["ray"], "init", lambda *a, **k: _fail(item, "calls ray.init"))
        _current = item
        try:
            yield
        finally:
            _current = None


def _check_child(execute_child):
    def checked(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, *rest, **kwargs):
        heavy = heavy_command(args, env) if _current is not None else None
        if heavy:
            _fail(_current, f"{heavy} ({args if isinstance(args, str) else ' '.join(map(str, args))})")
        return execute_child(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, *rest, **kwargs)

    return checked


def _check_model_size(modeling_utils) -> None:
    model_class = modeling_utils.PreTrainedModel
    load = model_class.__dict__["from_pretrained"].__func__

    def checked(cls, *args, **kwargs):
        model = load(cls, *args, **kwargs)
        if _current is not None:
            size = sum(p.numel() for p in (model[0] if isinstance(model, tuple) else model).parameters())
            if size > TINY_PARAMETERS:
                _fail(_current, f"loads a real model ({cls.__name__}, {size / 1e6:.0f}M parameters)")
        return model

    model_class.from_pretrained = classmethod(checked)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `then(module)` once `name` is imported: transformers costs seconds to import, so the
    guard waits for a test to import it rather than importing it for every run."""

    def __init__(self, name: str, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then(module):
                exec_module(module)
                self.then(module)

            spec.loader.exec_module = exec_then
        return spec


_spawn = subprocess.Popen._execute_child


def pytest_configure(config: pytest.Config) -> None:
    # Popen's one spawning method (POSIX): subprocess.run, Popen and Ray's own Popen subclass go through it
    subprocess.Popen._execute_child = _check_child(_spawn)
    if "transformers.modeling_utils" in sys.modules:
        _check_model_size(sys.modules["transformers.modeling_utils"])
    else:
        sys.meta_path.insert(0, _AfterImport("transformers.modeling_utils", _check_model_size))



def pytest_unconfigure(config: pytest.Config) -> None:
    subprocess.Popen._execute_child = _spawn


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with _guarded(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _guarded(item):
        yield
