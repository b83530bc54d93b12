"""`emocal sweep SPEC` (= `python -m orchestrator.sweep SPEC`): validate, plan, run every trial through Ray Tune, report.

    emocal sweep specs/quickstart.yaml --data-root DATA
    emocal plan specs/full_paper.yaml --format json                 # = emocal sweep SPEC --dry-run
    emocal sweep specs/full_paper.yaml --resume                     # after a kill, any kind

Everything about the spec is checked before Ray starts. The Ray dashboard binds to 127.0.0.1
unless --dashboard-host says otherwise (an exposed dashboard lets anyone run code). Output
goes to `<runs>/<spec name>/`: Tune's state, the stage store, the spec as run, the report
(Markdown and CSV) and `tracking_uri.txt`, the MLflow store the metrics go to (--tracking-uri,
else MLFLOW_TRACKING_URI, else the one recorded there before, else ./mlflow.db), which the
readers (report, figures, claims) find from the run folder. The arguments are parsed in
orchestrator/cli.py.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # parse in the light CLI first: `--help` then imports neither torch nor Ray
    from orchestrator.cli import run_module

    sys.exit(run_module("sweep"))

import argparse
import difflib
import json
import logging
import os
import signal
import time
from pathlib import Path

import yaml

from orchestrator import locations
from orchestrator.dashboard import access_hint, check_dashboard_host
from orchestrator.locations import resolve_data_root  # noqa: F401 - its old home
from orchestrator.plan import LLMTrialPlan, build_plan, handover_keys, launch_order, plan_summary
from orchestrator.spec import SpecError, SweepSpec, load_spec
from trainables.llm.methods import LLMMethodConfig

_logger = logging.getLogger("orchestrator.sweep")

_STARTED = time.perf_counter()  # this module's import: the sweep's phases count from here
TASK_HEAD_CPU = 0.01  # the trainable itself only waits on its generation tasks


def parse_args(argv=None) -> argparse.Namespace:
    """`python -m orchestrator.sweep`'s arguments (the parser is orchestrator/cli.py's), checked."""
    from orchestrator.cli import command_parser

    args = command_parser("sweep", prog="python -m orchestrator.sweep").parse_args(argv)
    _warn_dashboard(args)
    return args


def _warn_dashboard(args: argparse.Namespace) -> None:
    if not (args.dry_run or args.address or args.no_dashboard):
        check_dashboard_host(args.dashboard_host)


def print_plan(spec: SweepSpec, summary: dict, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(summary, indent=1))
        return
    print(f"spec {spec.name}: {len(summary['trials'])} trials "
          f"({len(spec.seeds)} seeds x {len(spec.datasets)} datasets x {len(spec.methods)} methods; an LLM row "
          f"has one trial per prompt), model {spec.model}")
    for t in summary["trials"]:
        if "shots_per_class" in t:
            what = f"LLM {t['model']}, {t['shots_per_class']} shots per class"
        else:
            what = f"generations {t['generations']}"
            what += "" if t["model"] == spec.model else f"  model {t['model']}"
            what += "".join(f"  {k} {v}" for k, v in t["train_overrides"].items())
        print(f"  {t['trial']:<48} {what}  stages {len(t['stages'])}")
    saved = summary["stages_total"] - summary["stages_unique"]
    print(f"stages: {summary['stages_total']} needed, {summary['stages_unique']} unique "
          f"({saved} shared, trained once)")
    r = summary["resources"]
    print(f"resources per trial: {r['cpus_per_trial']} CPU, {r['gpus_per_trial']} GPU "
          f"({r['gpus_per_llm_trial']} GPU for an LLM trial)")


def check_resume_spec(run_dir: Path, spec: SweepSpec, resume: bool) -> None:
    """The spec as first run is kept; a different one is refused on resume, with the diff."""
    saved = run_dir / "spec.yaml"
    current = yaml.safe_dump(spec.raw, sort_keys=True)
    if saved.is_file() and resume:
        before = saved.read_text()
        if before != current:
            diff = "".join(difflib.unified_diff(before.splitlines(True), current.splitlines(True),
                                                "spec as run", "spec now"))
            raise SpecError(f"{spec.source_path} changed since the run in {run_dir} started; "
                            f"resume it with the spec as run, or start a new run under another name:\n{diff}")
    run_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(current)


def _data_sources(spec: SweepSpec) -> dict[str, tuple]:
    """Every data source of the spec -> (source, data root, split seed, its fingerprint here)."""
    from trainables.data import data_fingerprint

    out = {}
    for entry in spec.datasets:
        for source in entry.sources:
            name = source if isinstance(source, str) else source.name
            out[name] = (source, spec.data_root, spec.data.split_seed,
                         data_fingerprint(source, spec.data_root, spec.data.split_seed))
    return out


def check_resources(spec: SweepSpec, available: dict, cluster: bool) -> None:
    """A trial that asks for more than the Ray instance has would wait for ever: say so now."""
    res = spec.resources
    gpus, cpus = available.get("GPU", 0.0), available.get("CPU", 0.0)
    if res.gpus_per_trial > gpus:
        fix = ("add GPU nodes, or set resources.gpus_per_trial: 0 to train on CPUs" if cluster else
               "set resources.gpus_per_trial: 0 to train on the CPU (or --num-gpus N when Ray does not see "
               "this machine's GPUs)")
        raise SpecError(f"resources.gpus_per_trial is {res.gpus_per_trial:g} but the Ray instance has "
                        f"{gpus:g} GPU(s), so no trial could start; {fix}")
    if any(isinstance(m, LLMMethodConfig) for m in spec.methods) and res.gpus_per_llm_trial > gpus:
        raise SpecError(f"resources.gpus_per_llm_trial is {res.gpus_per_llm_trial:g} (an 8-9B LLM wants a whole GPU) "
                        f"but the Ray instance has {gpus:g} GPU(s), so no LLM trial could start; add a GPU, or set "
                        "resources.gpus_per_llm_trial: 0 to generate on the CPU (only for tiny models)")
    if res.cpus_per_trial > cpus:
        raise SpecError(f"resources.cpus_per_trial is {res.cpus_per_trial:g} but the Ray instance has {cpus:g} "
                        f"CPU(s), so no trial could start; lower it (or --num-cpus N)")


class _Phases:
    """Seconds between marks, from the process's start: what a sweep spends outside its trials."""

    def __init__(self):
        self.seconds: dict[str, float] = {"spec": time.perf_counter() - _STARTED}  # read and checked
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({k: round(v, 3) for k, v in self.seconds.items()}, indent=1))
        _logger.info("sweep seconds: %s", ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))


def run_sweep(spec: SweepSpec, args: argparse.Namespace) -> int:
    import ray
    from ray import tune

    from orchestrator import report
    from orchestrator.cluster import ClusterError, check_nodes
    from orchestrator.tracking import describe_experiment, ensure_experiment, mark_unfinished, sync_runs
    from orchestrator.recorder import RunRecorder, write_state
    from orchestrator.trial import planned_run, prepare_data_refs, run_trial, trial_gpus, trial_store_root

    phases = _Phases()  # where the fixed cost of a sweep goes (issue 14): written to sweep_seconds.json
    trials = build_plan(spec)
    chains = [t for t in trials if not isinstance(t, LLMTrialPlan)]  # an LLM row trains nothing, tokenises nothing
    run_dir = locations.run_folder(args.runs, spec.name)
    tune_dir = run_dir / "tune"
    check_resume_spec(run_dir, spec, args.resume)
    restore = args.resume and tune.Tuner.can_restore(str(tune_dir / "trials"))
    if args.resume and not restore:
        # killed before Tune saved its state: a fresh start is the same thing, since finished
        # stages come from the stage store and each trial re-attaches its MLflow run
        _logger.warning("no Tune state in %s yet; starting the sweep afresh (finished stages are reused)", tune_dir)

    init = dict(include_dashboard=not args.no_dashboard, dashboard_host=args.dashboard_host,
                dashboard_port=args.dashboard_port, logging_level=logging.WARNING)
    if args.address:
        init = {"address": args.address}
    else:
        # "local": a new instance of our own, never a cluster some earlier `ray start` left behind
        init.update(address="local", num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    phases.mark("plan")
    context = ray.init(**init)
    phases.mark("ray_start")
    # before any MLflow run or trial: a setup that cannot work is refused, saying what to do
    try:
        check_resources(spec, ray.cluster_resources(), bool(args.address))
        if args.address:  # every node sees the run folder, the same data, model and version
            models = tuple(sorted({spec.model} | {m.model for m in spec.methods if m.model is not None}))
            nodes = check_nodes(run_dir, _data_sources(spec), models)
            print(f"cluster check: {nodes} node(s) see the run folder, the same data, model and emocal version",
                  flush=True)
    except (ClusterError, SpecError) as exc:
        ray.shutdown()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if context.dashboard_url:  # with token authentication on, also where the token is (and made private)
        print(access_hint(context.dashboard_url), flush=True)
    try:
        uri = args.tracking_uri  # resolved by run(): --tracking-uri, $MLFLOW_TRACKING_URI, the run folder's
        # a local store keeps artifacts beside it; a tracking server decides where its artifacts go
        local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
        experiment_id = ensure_experiment(uri, spec.name, artifact_root=Path.cwd() / "mlartifacts" if local else None)
        mlflow_runs = sync_runs(uri, experiment_id, [planned_run(t, spec.name) for t in trials])
        res = spec.resources
        store_root = run_dir / "stages"
        run_dir.mkdir(parents=True, exist_ok=True)
        # the driver is MLflow's only writer (orchestrator/recorder.py): trials report stage keys
        recorder_state = write_state(
            run_dir / "mlflow_runs.json", uri, mlflow_runs, {t.key: t.fingerprint for t in trials},
            {t.key: [(s.generation, s.key()) for s in t.stages] for t in trials},
            {t.key: str(trial_store_root(store_root, not args.no_reuse, t.key)) for t in trials})
        sweep = {"store_root": str(store_root), "reuse": not args.no_reuse,
                 "task_cpus": res.cpus_per_trial - TASK_HEAD_CPU, "task_gpus": res.gpus_per_trial,
                 "llm_task_gpus": res.gpus_per_llm_trial, "stage_wait_s": res.stage_wait_hours * 3600,
                 "keep": "all" if args.keep_all_weights else sorted(handover_keys(chains)),
                 "data": prepare_data_refs(chains)}

        # the plans ride along with the trainable (tune.with_parameters, via the object store);
        # a trial's config is only its key, which is also its name and folder
        ordered = launch_order(trials)
        plans = {t.key: t.to_dict() for t in ordered}
        gpus = {t.key: trial_gpus(t, res) for t in ordered}  # LLM trials take their own share (a whole GPU)

        def resources(config: dict) -> tune.PlacementGroupFactory:
            bundle = {"CPU": res.cpus_per_trial - TASK_HEAD_CPU}
            if gpus[config["trial"]]:
                bundle["GPU"] = gpus[config["trial"]]
            return tune.PlacementGroupFactory([{"CPU": TASK_HEAD_CPU}, bundle], strategy=res.placement_strategy)

        trainable = tune.with_resources(tune.with_parameters(run_trial, plans=plans, sweep=sweep), resources)
        if restore:
            tuner = tune.Tuner.restore(str(tune_dir / "trials"), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search(list(plans))},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=res.max_concurrent_trials,
                    # a trial's actor imports torch and the trainables (seconds); trials of the same
                    # resources take over a finished one's actor and placement group instead
                    reuse_actors=True,
                    trial_name_creator=lambda t: t.config["trial"],
                    trial_dirname_creator=lambda t: t.config["trial"],
                ),
                run_config=tune.RunConfig(
                    name="trials", storage_path=str(tune_dir),
                    failure_config=tune.FailureConfig(max_failures=res.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    callbacks=[RunRecorder(recorder_state)],
                    verbose=1,
                ),
            )
        # SIGTERM (a scheduler's stop, `kill`, docker stop) ends the sweep as Ctrl-C does:
        # Tune stops the trials, their runs are marked KILLED and --resume continues
        previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
        phases.mark("mlflow_and_tune_setup")
        try:
            results = tuner.fit()
        finally:
            signal.signal(signal.SIGTERM, previous)
        phases.mark("trials")
    finally:
        ray.shutdown()
    phases.mark("ray_shutdown")

    RunRecorder(recorder_state).catch_up_all()  # whatever the store holds and MLflow lacks
    errors = [r for r in results if r.error is not None]
    # Interrupted (Ctrl-C): Tune marks stopped trials TERMINATED, so the trials' own runs decide:
    # a trial that got to its end finished its run (FINISHED or FAILED); the rest are KILLED.
    unfinished = mark_unfinished(uri, mlflow_runs.values())
    tables = report.build_report(uri, spec.name, out_dir=run_dir)
    try:
        describe_experiment(uri, experiment_id, tables)
    except Exception as exc:  # noqa: BLE001 - the report is printed and written anyway
        _logger.warning("MLflow: could not put the report in the experiment's description: %s", exc)
    print(tables)
    print(f"\nReport written to {run_dir / 'report.md'} and {run_dir / 'report.csv'}")
    print(report.mlflow_ui_hint(uri, experiment_id))
    phases.mark("report")
    phases.write(run_dir / "sweep_seconds.json")
    if unfinished:
        print(f"\nInterrupted: {unfinished} of {len(trials)} trial(s) unfinished (their MLflow runs are marked KILLED). "
              f"Continue with: python -m orchestrator.sweep {spec.source_path} --resume", file=sys.stderr)
        return 130
    if errors:
        print(f"\n{len(errors)} trial(s) failed:", file=sys.stderr)
        for r in errors:
            print(f"  {r.path}: {str(r.error).splitlines()[-1] if str(r.error) else r.error}", file=sys.stderr)
        return 1
    return 0


def show_plan(args: argparse.Namespace) -> int:
    """`emocal plan SPEC`: the spec checked and its plan printed; nothing trains."""
    try:
        spec = load_spec(args.spec, data_root=str(args.data_root))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_plan(spec, plan_summary(spec, build_plan(spec)), args.format)
    return 0


def run(args: argparse.Namespace) -> int:
    """`emocal sweep SPEC`: the sweep (or with --dry-run, its plan), its store recorded in the run folder."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.dry_run:
        return show_plan(args)
    _warn_dashboard(args)
    try:
        spec = load_spec(args.spec, data_root=str(args.data_root))
        run_dir = locations.run_folder(args.runs, spec.name)
        args.tracking_uri = locations.resolve_tracking_uri(args.tracking_uri, run_dir)
        locations.record_tracking_uri(run_dir, args.tracking_uri)
        return run_sweep(spec, args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """`python -m orchestrator.sweep ...` (`emocal sweep` is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("sweep", argv)
