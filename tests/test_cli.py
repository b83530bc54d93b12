"""The `emocal` command: light `--help`, each command reaching its function with its arguments, one
rule for where data, run folders and the MLflow store are, and docs/cli.md in step with the parsers."""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from orchestrator import cli, locations

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "mlflow", "transformers")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code, wherever the venv's install points


def _imported(argv: list[str]) -> set[str]:
    """The top-level packages that `python -X importtime ARGV` imported (and the command's rc 0)."""
    out = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, cwd=ROOT,
                         env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in out.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2 and "imported package" not in line}


HELPS = ([["-m", "orchestrator.cli", "--help"], ["-m", "orchestrator", "--help"]]
         + [["-m", "orchestrator.cli", name, "--help"] for name in cli.COMMANDS]
         + [["-m", "orchestrator.cli", "data", sub, "--help"] for sub in ("stats", "fetch")]
         + [["-m", c.module, "--help"] for c in cli.COMMANDS.values() if c.module])


@pytest.mark.parametrize("argv", HELPS, ids=[" ".join(a[1:]) for a in HELPS])
def test_help_imports_neither_torch_nor_ray_nor_mlflow(argv):
    imported = _imported(argv)
    assert "orchestrator" in imported  # the parse did go through importtime
    assert not imported & set(HEAVY), f"{' '.join(argv)} imported {sorted(imported & set(HEAVY))}"


def test_the_console_script_is_the_cli_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["emocal"].split(":")
    assert getattr(importlib.import_module(module), function) is cli.main
    for command in cli.COMMANDS.values():  # every target resolves to a function, every module to a file
        module, function = command.target.split(":")
        assert callable(getattr(importlib.import_module(module), function))
        assert command.module is None or command.module == module


def test_docs_cli_md_is_generated_from_the_parsers():
    assert (ROOT / "docs" / "cli.md").read_text() == cli.reference_markdown(), \
        "docs/cli.md is stale: python -m orchestrator.cli --markdown > docs/cli.md"
    text = cli.reference_markdown()
    for name in cli.COMMANDS:
        assert f"## `emocal {name}`" in text
    assert "| `--tracking-uri URI` |" in text and "| `--output DIR` | deprecated name of --runs |" in text


def test_report_picks_are_the_reports_own():
    from orchestrator import report

    assert cli.PICKS == (report.SEED_MEAN, report.PER_SEED)


# ---- one rule for the data root, with one error ----

NO_ROOT = ("error: no data root: pass --data-root DIR or set EMOCAL_DATA=DIR (the folder holding one folder per "
           "dataset; `emocal data fetch NAME` fills it)\n")


@pytest.mark.parametrize("argv", [
    ["sweep", "specs/quickstart.yaml"], ["sweep", "specs/quickstart.yaml", "--dry-run"],
    ["plan", "specs/quickstart.yaml"], ["data", "stats"], ["data", "fetch", "isear"]])
def test_a_missing_data_root_is_the_same_error_in_every_command(argv, monkeypatch, capsys):
    monkeypatch.delenv("EMOCAL_DATA", raising=False)
    monkeypatch.chdir(ROOT)
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == NO_ROOT
    module = cli.COMMANDS[argv[0]].module
    if module and argv[0] != "plan":  # python -m orchestrator.X: the same
        assert importlib.import_module(module).main(argv[1:]) == 2
        assert capsys.readouterr().err == NO_ROOT


def test_the_data_root_is_the_argument_else_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOCAL_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    assert locations.resolve_data_root(None) == tmp_path.resolve()
    assert locations.resolve_data_root("mine") == (tmp_path / "mine").resolve()
    with pytest.raises(locations.LocationError, match=r"data root .*/nowhere is not a folder; pass --data-root"):
        locations.resolve_data_root("nowhere")
    assert locations.resolve_data_root("nowhere", must_exist=False) == (tmp_path / "nowhere").resolve()


# ---- each command reaches its function with its arguments ----

def test_data_commands_get_the_resolved_root(tmp_path, monkeypatch):
    from orchestrator import data

    calls = []
    monkeypatch.setattr(data, "stats", lambda args: calls.append(("stats", args)) or 0)
    monkeypatch.setattr(data, "fetch", lambda args: calls.append(("fetch", args)) or 0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    assert cli.main(["data", "stats", "isear", "ssec", "--data-root", "d", "--format", "json"]) == 0
    assert data.main(["fetch", "isear", "--data-root", "new", "--force"]) == 0  # fetch may fill a new folder
    (_, stats), (_, fetch) = calls
    assert (stats.names, stats.data_root, stats.format) == (["isear", "ssec"], tmp_path.resolve() / "d", "json")
    assert (fetch.name, fetch.data_root, fetch.force) == ("isear", tmp_path.resolve() / "new", True)
    with pytest.raises(SystemExit):
        cli.main(["data", "fetch", "nosuch", "--data-root", "d"])


def test_plan_prints_the_plan_as_the_dry_run_does(data_root, capsys):
    from orchestrator import sweep

    assert cli.main(["plan", "specs/quickstart.yaml", "--data-root", str(data_root)]) == 0
    plan = capsys.readouterr().out
    assert plan.startswith("spec quickstart: ") and "\nstages: " in plan
    assert sweep.main(["specs/quickstart.yaml", "--dry-run", "--data-root", str(data_root)]) == 0
    assert capsys.readouterr().out == plan
    assert cli.main(["sweep", "specs/quickstart.yaml", "--dry-run", "--data-root", str(data_root)]) == 0
    assert capsys.readouterr().out == plan


def test_the_sweep_gets_its_run_folder_and_store_and_records_the_store(data_root, tmp_path, monkeypatch, capsys):
    from orchestrator import sweep

    calls = []
    monkeypatch.setattr(sweep, "run_sweep", lambda spec, args: calls.append((spec.name, args)) or 0)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = str(ROOT / "specs" / "quickstart.yaml")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", spec, "--data-root", str(data_root), "--runs", "r", "--tracking-uri",
                     "sqlite:///stores/a.db", "--num-cpus", "2", "--no-dashboard"]) == 0
    name, args = calls.pop()
    assert (name, args.runs, args.num_cpus, args.no_dashboard) == ("quickstart", "r", 2.0, True)
    assert args.tracking_uri == f"sqlite:///{tmp_path.resolve()}/stores/a.db"  # absolute: trials run elsewhere
    recorded = tmp_path / "r" / "quickstart" / locations.TRACKING_URI_FILE
    assert recorded.read_text() == args.tracking_uri + "\n"
    # --resume from another folder, without --tracking-uri: the store the run folder recorded
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert sweep.main([spec, "--data-root", str(data_root), "--runs", "../r", "--resume", "--no-dashboard"]) == 0
    assert calls.pop()[1].tracking_uri == f"sqlite:///{tmp_path.resolve()}/stores/a.db"
    # the old name of --runs still works, and says so
    assert cli.main(["sweep", spec, "--data-root", str(data_root), "--output", "old", "--no-dashboard"]) == 0
    _, args = calls.pop()
    assert args.runs == "old" and args.tracking_uri == f"sqlite:///{tmp_path.resolve()}/elsewhere/mlflow.db"
    assert "warning: --output is deprecated; use --runs" in capsys.readouterr().err
    assert (tmp_path / "elsewhere" / "old" / "quickstart" / locations.TRACKING_URI_FILE).is_file()


def test_sweep_defaults_and_the_output_alias():
    from orchestrator import sweep

    assert sweep.parse_args(["s.yaml"]).runs == "runs"
    assert sweep.parse_args(["s.yaml", "--output", "a"]).runs == "a"
    assert sweep.parse_args(["s.yaml", "--runs", "b"]).runs == "b"


# ---- the MLflow store: one rule, found from the run folder ----

def test_the_store_is_the_argument_the_environment_the_run_folder_then_mlflow_db(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "runs" / "x"
    here = tmp_path.resolve()
    assert locations.resolve_tracking_uri(None, run_dir, cwd=here) == f"sqlite:///{here}/mlflow.db"
    with pytest.raises(locations.LocationError, match=r"no MLflow store found: .*tracking_uri.txt is not there.*"
                                                      r"pass --tracking-uri URI, or --runs DIR"):
        locations.resolve_tracking_uri(None, run_dir, cwd=here, must_exist=True)
    run_dir.mkdir(parents=True)  # a run folder of an older sweep: its recorder state names the store
    (run_dir / locations.RECORDER_STATE_FILE).write_text('{"uri": "sqlite:////old/mlflow.db", "trials": {}}')
    assert locations.resolve_tracking_uri(None, run_dir, must_exist=True) == "sqlite:////old/mlflow.db"
    locations.record_tracking_uri(run_dir, "sqlite:////srv/mlflow.db")
    assert locations.resolve_tracking_uri(None, run_dir) == "sqlite:////srv/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert locations.resolve_tracking_uri(None, run_dir) == "http://mlflow:5000"
    assert locations.resolve_tracking_uri("sqlite:///a.db", run_dir, cwd=here) == f"sqlite:///{here}/a.db"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A sweep's leftovers as the sweep leaves them: a store with two trials' runs logged by the
    recorder's calls, in the folder the sweep ran in, and the run folder recording the store."""
    from orchestrator.tracking import PlannedRun, TrialRun, ensure_experiment, sync_runs

    ran_in = tmp_path_factory.mktemp("ran_in")
    uri = f"sqlite:///{ran_in / 'mlflow.db'}"
    exp = ensure_experiment(uri, "qs", artifact_root=ran_in / "mlartifacts")
    metrics = {"val_macro_f1": 50.0, "test_macro_f1": 40.0, "test_weighted_f1": 41.0, "test_ece": 9.0,
               "test_ece_ts": 4.0}
    planned = [PlannedRun(f"isear-{m}-seed0", "fp", {"seed": "0", "dataset": "isear", "method": m,
                                                      "emocal.ece": ece, "emocal.report_generation": "best"},
                          {"model": "roberta-base"})
               for m, ece in (("ce", "raw"), ("ce_ts", "ts"))]
    for key, run_id in sync_runs(uri, exp, planned).items():
        TrialRun(uri, run_id, "fp").log_generation(1, metrics)
    locations.record_tracking_uri(ran_in / "runs" / "qs", uri)
    return ran_in


def test_readers_find_the_sweeps_store_from_another_folder(swept, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    runs = str(swept / "runs")
    assert cli.main(["report", "qs", "--runs", runs, "--out", "rep"]) == 0
    assert "| ce | roberta-base | 1 | g1 | 40.00 (41.00) | 9.00 |" in capsys.readouterr().out
    assert (tmp_path / "rep" / "report.md").is_file()
    assert cli.main(["claims", "qs", "--dataset", "isear", "--runs", runs, "--out", "cl"]) == 0
    claims = (tmp_path / "cl" / "claims.md").read_text()  # --out is a folder, as for every reader
    assert "temperature scaling lowers ID ECE against plain CE | **held**" in claims
    assert claims in capsys.readouterr().out
    # named outright instead: the same store
    assert cli.main(["report", "qs", "--tracking-uri", f"sqlite:///{swept / 'mlflow.db'}"]) == 0
    assert "| ce_ts |" in capsys.readouterr().out
    # named by nothing: said so, and no empty ./mlflow.db is made here
    for argv in (["report", "qs"], ["figures", "qs", "--dataset", "isear"], ["claims", "qs", "--dataset", "isear"]):
        assert cli.main(argv) == 2
        assert "error: no MLflow store found" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_python_m_report_from_another_folder(swept, tmp_path):
    """The command users know, in a fresh process: the store found from --runs alone."""
    env = {k: v for k, v in ENV.items() if k != "MLFLOW_TRACKING_URI"}
    out = subprocess.run([sys.executable, "-m", "orchestrator.report", "qs", "--runs", str(swept / "runs")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| ce_ts | roberta-base | 1 | g1 |" in out.stdout
    assert not (tmp_path / "mlflow.db").exists()


def test_a_new_command_is_one_entry(monkeypatch, capsys):
    """What later issues do (export, predict, search): one COMMANDS entry, reached by name."""
    seen = []
    monkeypatch.setitem(cli.COMMANDS, "echo", cli.Command(
        "say it back", "Say it back.", lambda p: p.add_argument("word"), "tests.test_cli:_echo"))
    monkeypatch.setattr(sys.modules[__name__], "_echo", lambda args: seen.append(args.word) or 0, raising=False)
    assert cli.main(["echo", "hi"]) == 0 and seen == ["hi"]
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "echo" in capsys.readouterr().out and "## `emocal echo`" in cli.reference_markdown()
    assert isinstance(cli.command_parser("echo"), argparse.ArgumentParser)
