"""`python -m orchestrator.sweep SPEC`: validate, plan, run every trial through Ray Tune, report.

    python -m orchestrator.sweep specs/quickstart.yaml --data-root ../shared/data
    python -m orchestrator.sweep specs/full_paper.yaml --dry-run --format json
    python -m orchestrator.sweep specs/full_paper.yaml --resume      # after a kill, any kind

Everything about the spec is checked before Ray starts. The Ray dashboard binds to 127.0.0.1
unless --dashboard-host says otherwise (an exposed dashboard lets anyone run code). Output
goes to `<output>/<spec name>/`: Tune's state, the stage store, the spec as run, and the
report (Markdown and CSV); metrics go to MLflow (MLFLOW_TRACKING_URI, else ./mlflow.db).
"""
from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
from pathlib import Path

import yaml

from orchestrator.dashboard import access_hint, check_dashboard_host
from orchestrator.plan import build_plan, launch_order, plan_summary
from orchestrator.spec import SpecError, SweepSpec, load_spec

_logger = logging.getLogger("orchestrator.sweep")

TASK_HEAD_CPU = 0.01  # the trainable itself only waits on its generation tasks


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m orchestrator.sweep", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="the sweep spec, e.g. specs/quickstart.yaml")
    p.add_argument("--data-root", help="folder holding the datasets (default: $EMOCAL_DATA)")
    p.add_argument("--output", default="runs", help="where run folders go (default: ./runs)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; train nothing")
    p.add_argument("--format", choices=("table", "json"), default="table", help="how --dry-run prints the plan")
    p.add_argument("--resume", action="store_true", help="finish an interrupted sweep; re-runs nothing finished")
    p.add_argument("--no-reuse", action="store_true", help="do not share stages between trials")
    p.add_argument("--address", help="join an existing Ray cluster (e.g. auto or ray://host:10001)")
    p.add_argument("--num-cpus", type=float, help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--num-gpus", type=float, help="GPUs of the local Ray instance (default: all)")
    p.add_argument("--dashboard-host", default="127.0.0.1", help="Ray dashboard bind address (default 127.0.0.1)")
    p.add_argument("--dashboard-port", type=int, default=8265)
    p.add_argument("--no-dashboard", action="store_true", help="start the local Ray instance without its dashboard")
    args = p.parse_args(argv)
    if not (args.dry_run or args.address or args.no_dashboard):
        check_dashboard_host(args.dashboard_host)
    return args


def resolve_data_root(arg: str | None) -> str:
    root = arg or os.environ.get("EMOCAL_DATA")
    if not root:
        raise SpecError("no data root: pass --data-root DIR or set EMOCAL_DATA (e.g. EMOCAL_DATA=../shared/data)")
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise SpecError(f"data root {path} is not a folder; pass --data-root DIR or set EMOCAL_DATA")
    return str(path)


def print_plan(spec: SweepSpec, summary: dict, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(summary, indent=1))
        return
    print(f"spec {spec.name}: {len(summary['trials'])} trials "
          f"({len(spec.seeds)} seeds x {len(spec.datasets)} datasets x {len(spec.methods)} methods), model {spec.model}")
    for t in summary["trials"]:
        print(f"  {t['trial']:<48} generations {t['generations']}  stages {len(t['stages'])}")
    saved = summary["stages_total"] - summary["stages_unique"]
    print(f"stages: {summary['stages_total']} needed, {summary['stages_unique']} unique "
          f"({saved} shared, trained once)")
    r = summary["resources"]
    print(f"resources per trial: {r['cpus_per_trial']} CPU, {r['gpus_per_trial']} GPU")


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


def run_sweep(spec: SweepSpec, args: argparse.Namespace) -> int:
    import ray
    from ray import tune

    from orchestrator import report
    from orchestrator.tracking import ensure_experiment, mark_unfinished, sync_runs, tracking_uri
    from orchestrator.trial import planned_run, run_trial

    trials = build_plan(spec)
    run_dir = Path(args.output).resolve() / spec.name
    tune_dir = run_dir / "tune"
    check_resume_spec(run_dir, spec, args.resume)
    restore = args.resume and tune.Tuner.can_restore(str(tune_dir / "trials"))
    if args.resume and not restore:
        # killed before Tune saved its state: a fresh start is the same thing, since finished
        # stages come from the stage store and each trial re-attaches its MLflow run
        _logger.warning("no Tune state in %s yet; starting the sweep afresh (finished stages are reused)", tune_dir)

    uri = tracking_uri()
    # a local store keeps artifacts beside it; a tracking server decides where its artifacts go
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    experiment_id = ensure_experiment(uri, spec.name, artifact_root=Path.cwd() / "mlartifacts" if local else None)
    mlflow_runs = sync_runs(uri, experiment_id, [planned_run(t, spec.name) for t in trials])
    res = spec.resources
    sweep = {"store_root": str(run_dir / "stages"), "reuse": not args.no_reuse, "tracking_uri": uri,
             "experiment_id": experiment_id, "spec_name": spec.name, "mlflow_runs": mlflow_runs,
             "task_cpus": res.cpus_per_trial - TASK_HEAD_CPU, "task_gpus": res.gpus_per_trial,
             "stage_wait_s": res.stage_wait_hours * 3600}

    init = dict(include_dashboard=not args.no_dashboard, dashboard_host=args.dashboard_host,
                dashboard_port=args.dashboard_port, logging_level=logging.WARNING)
    if args.address:
        init = {"address": args.address}
    else:
        # "local": a new instance of our own, never a cluster some earlier `ray start` left behind
        init.update(address="local", num_cpus=args.num_cpus, num_gpus=args.num_gpus)
    context = ray.init(**init)
    if context.dashboard_url:  # with token authentication on, also where the token is (and made private)
        print(access_hint(context.dashboard_url), flush=True)
    try:
        bundle = {"CPU": res.cpus_per_trial - TASK_HEAD_CPU}
        if res.gpus_per_trial:
            bundle["GPU"] = res.gpus_per_trial
        # the plans ride along with the trainable (tune.with_parameters, via the object store);
        # a trial's config is only its key, which is also its name and folder
        plans = {t.key: t.to_dict() for t in launch_order(trials)}
        trainable = tune.with_resources(tune.with_parameters(run_trial, plans=plans, sweep=sweep),
                                        tune.PlacementGroupFactory([{"CPU": TASK_HEAD_CPU}, bundle],
                                                                   strategy=res.placement_strategy))
        if restore:
            tuner = tune.Tuner.restore(str(tune_dir / "trials"), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search(list(plans))},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=res.max_concurrent_trials,
                    trial_name_creator=lambda t: t.config["trial"],
                    trial_dirname_creator=lambda t: t.config["trial"],
                ),
                run_config=tune.RunConfig(
                    name="trials", storage_path=str(tune_dir),
                    failure_config=tune.FailureConfig(max_failures=res.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    verbose=1,
                ),
            )
        results = tuner.fit()
    finally:
        ray.shutdown()

    errors = [r for r in results if r.error is not None]
    # Interrupted (Ctrl-C): Tune marks stopped trials TERMINATED, so the trials' own runs decide:
    # a trial that got to its end finished its run (FINISHED or FAILED); the rest are KILLED.
    unfinished = mark_unfinished(uri, mlflow_runs.values())
    tables = report.build_report(uri, spec.name, out_dir=run_dir)
    print(tables)
    print(f"\nReport written to {run_dir / 'report.md'} and {run_dir / 'report.csv'}")
    print(report.mlflow_ui_hint(uri, experiment_id))
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


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        data_root = resolve_data_root(args.data_root)
        spec = load_spec(args.spec, data_root=data_root)
        if args.dry_run:
            print_plan(spec, plan_summary(spec, build_plan(spec)), args.format)
            return 0
        return run_sweep(spec, args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
