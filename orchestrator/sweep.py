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
import contextlib
import difflib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator import locations
from orchestrator.dashboard import access_hint, check_dashboard_host
from orchestrator.locations import resolve_data_root  # noqa: F401 - its old home
from orchestrator.plan import (build_plan, export_keys, kept_keys, launch_order, plan_summary, releasable_handovers,
                               weights_summary)
from orchestrator.spec import SpecError, SweepSpec, load_spec

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
    w = summary["kept_weights"]
    print("weights kept (fp32 safetensors, encoder + head): "
          f"{_cost(w['for_students'])} for students; {_cost(w['with_export'])} with the spec's export: list "
          f"({len(spec.export)} pairs); {_cost(w['every_stage'])} with --keep-all-weights; one (dataset, method) "
          f"pair in export: adds at most {_cost(w['one_more_pair'])}")


def _cost(cost: dict) -> str:
    size = "size unknown" if cost["bytes"] is None else f"{cost['bytes'] / 1e9:.2f} GB"
    return f"{cost['stages']} stages, {size}"


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
    from orchestrator.kinds import kind_of

    res = spec.resources
    gpus, cpus = available.get("GPU", 0.0), available.get("CPU", 0.0)
    for kind in sorted({kind_of(m) for m in spec.methods}, key=lambda k: k.name):  # each kind asks for its own GPUs
        problem = kind.gpu_shortage(res, gpus, cluster)
        if problem:
            raise SpecError(problem)
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


@dataclass(frozen=True)
class SweepOptions:
    """The command line's say in a run (the spec says the rest)."""

    runs: Path  # parent of the run folders
    tracking_uri: str | None = None  # the MLflow store, resolved by the CLI (orchestrator/locations.py)
    resume: bool = False
    reuse: bool = True
    keep_all_weights: bool = False
    address: str | None = None  # join this Ray cluster; None starts a local instance of our own
    num_cpus: float | None = None
    num_gpus: float | None = None
    dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8265
    ignore_disk_check: bool = False  # start even when the estimated stage store exceeds the free space
    mlflow_wait_s: float = 120.0  # after the trials: how long queued MLflow writes may take

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SweepOptions":
        runs = getattr(args, "runs", None) or getattr(args, "output", None) or "runs"
        return cls(runs=Path(runs).expanduser().resolve(), tracking_uri=getattr(args, "tracking_uri", None),
                   resume=args.resume, reuse=not args.no_reuse,
                   keep_all_weights=args.keep_all_weights, address=args.address, num_cpus=args.num_cpus,
                   num_gpus=args.num_gpus, dashboard=not args.no_dashboard, dashboard_host=args.dashboard_host,
                   dashboard_port=args.dashboard_port, ignore_disk_check=getattr(args, "ignore_disk_check", False),
                   mlflow_wait_s=getattr(args, "mlflow_wait", 120.0))


@dataclass(frozen=True)
class RunFolder:
    """A sweep's plan and where it runs: `<runs>/<spec name>/`."""

    trials: tuple  # TrialPlan | LLMTrialPlan, in the spec's order
    path: Path
    restore: bool  # Tune's saved state is there to continue (--resume)
    stages: Path | None = None  # another run's stage store (a search's confirm step reads the search's)

    @property
    def tune_dir(self) -> Path:
        return self.path / "tune"

    @property
    def store_root(self) -> Path:
        return self.stages or self.path / "stages"


@dataclass(frozen=True)
class Tracking:
    """The sweep's MLflow side: the store, the experiment, one run per trial, the recorder's state."""

    uri: str
    experiment_id: str
    runs: dict  # trial key -> MLflow run id
    recorder_state: Path


def open_run_folder(spec: SweepSpec, options: SweepOptions) -> RunFolder:
    """Plan the trials and open the run folder; on --resume, refuse a changed spec and find Tune's state."""
    from ray import tune

    trials = tuple(build_plan(spec))
    path = locations.run_folder(options.runs, spec.name)
    check_resume_spec(path, spec, options.resume)
    restore = options.resume and _tune_state_readable(path / "tune" / "trials") and \
        tune.Tuner.can_restore(str(path / "tune" / "trials"))
    if options.resume and not restore:
        # killed before Tune saved its state: a fresh start is the same thing, since finished
        # stages come from the stage store and each trial re-attaches its MLflow run
        _logger.warning("no Tune state in %s yet; starting the sweep afresh (finished stages are reused)",
                        path / "tune")
    return RunFolder(trials, path, restore)


def _tune_state_readable(trials_dir: Path) -> bool:
    """Whether Tune's newest experiment state parses. A driver SIGKILLed while Tune writes it
    leaves an empty or cut file, which `Tuner.restore` cannot read; such a file is moved aside
    (kept, renamed `.unreadable`), and the next newest, if any, is tried. With none left the
    sweep starts afresh, which loses nothing: finished stages are in the stage store."""
    while True:
        states = sorted(trials_dir.glob("experiment_state-*.json"))
        if not states:
            return False
        try:
            json.loads(states[-1].read_text())
            return True
        except (OSError, ValueError) as exc:
            _logger.warning("Tune's state %s cannot be read (%s): moved aside to %s.unreadable",
                            states[-1], exc, states[-1].name)
            states[-1].rename(states[-1].with_name(states[-1].name + ".unreadable"))


def start_ray(options: SweepOptions):
    """Join the cluster named, else start a local instance of our own (never one some earlier
    `ray start` left behind)."""
    import ray

    if options.address:
        return ray.init(address=options.address)
    return ray.init(address="local", num_cpus=options.num_cpus, num_gpus=options.num_gpus,
                    include_dashboard=options.dashboard, dashboard_host=options.dashboard_host,
                    dashboard_port=options.dashboard_port, logging_level=logging.WARNING)


def check_setup(spec: SweepSpec, folder: RunFolder, options: SweepOptions) -> None:
    """Before any MLflow run or trial: a setup that cannot work is refused, saying what to do
    (raises SpecError or ClusterError)."""
    import ray

    from orchestrator.cluster import check_nodes
    from orchestrator.spec import wordnet_methods

    check_resources(spec, ray.cluster_resources(), bool(options.address))
    if options.address:  # every node sees the run folder, the same data, model and version
        models = tuple(sorted({spec.model} | {m.model for m in spec.methods if m.model is not None}))
        nodes = check_nodes(folder.path, _data_sources(spec), models, wordnet=bool(wordnet_methods(spec)))
        print(f"cluster check: {nodes} node(s) see the run folder, the same data, model and emocal version",
              flush=True)


def setup_ready(spec: SweepSpec, folder: RunFolder, options: SweepOptions, context) -> bool:
    """check_setup, with a refusal printed (False); then where the dashboard is, if it runs."""
    from orchestrator.cluster import ClusterError

    try:
        check_setup(spec, folder, options)
    except (ClusterError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    if context.dashboard_url:  # with token authentication on, also where the token is (and made private)
        print(access_hint(context.dashboard_url), flush=True)
    return True


def check_disk(spec: SweepSpec, folder: RunFolder, options: SweepOptions) -> bool:
    """Before Ray starts: whether the estimated stage store fits the free space where the run
    folder lives (orchestrator/cost.py); says why not, or that --ignore-disk-check overrides."""
    from orchestrator.cost import CostError, disk_preflight, exportable

    try:
        problem, line = disk_preflight(folder.trials, folder.path, folder.store_root, options.reuse,
                                       options.keep_all_weights, exportable(spec, folder.trials))
    except CostError as exc:  # a model whose size is not known here: nothing to compare
        _logger.warning("disk check skipped: %s", exc)
        return True
    print(line, flush=True)
    if problem and not options.ignore_disk_check:
        print(f"error: {problem}", file=sys.stderr)
        return False
    if problem:
        _logger.warning("%s (starting anyway: --ignore-disk-check)", problem)
    return True


def open_tracking(spec: SweepSpec, folder: RunFolder, options: SweepOptions) -> Tracking:
    """The experiment and one run per trial (continued where the fingerprint matches), and the
    state the driver's recorder reads: the driver is MLflow's only writer (orchestrator/recorder.py)."""
    from orchestrator.kinds import kind_of
    from orchestrator.recorder import write_state
    from orchestrator.tracking import ensure_experiment, sync_runs
    from orchestrator.trial import trial_store_root

    # resolved by run(): --tracking-uri, $MLFLOW_TRACKING_URI, the run folder's record, ./mlflow.db
    uri = options.tracking_uri or locations.resolve_tracking_uri(None, folder.path)
    # a local store keeps artifacts beside it; a tracking server decides where its artifacts go
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    experiment_id = ensure_experiment(uri, spec.name, artifact_root=Path.cwd() / "mlartifacts" if local else None)
    runs = sync_runs(uri, experiment_id, [kind_of(t).planned_run(t, spec.name) for t in folder.trials])
    folder.path.mkdir(parents=True, exist_ok=True)
    trials = folder.trials
    state = write_state(
        folder.path / "mlflow_runs.json", uri, runs, {t.key: t.fingerprint for t in trials},
        {t.key: [(s.generation, s.key()) for s in t.stages] for t in trials},
        {t.key: str(trial_store_root(folder.store_root, options.reuse, t.key)) for t in trials})
    return Tracking(uri, experiment_id, runs, state)


def trial_settings(spec: SweepSpec, folder: RunFolder, options: SweepOptions):
    """What every trial shares (orchestrator/trial.py, TrialSettings); starts preparing the data."""
    import ray

    from orchestrator.kinds import kind_of
    from orchestrator.progress import sweep_progress
    from orchestrator.trial import TrialSettings, prepare_data_refs

    res = spec.resources
    chains = [t for t in folder.trials if kind_of(t).trains]  # an LLM row trains nothing, tokenises nothing
    return TrialSettings(
        store_root=str(folder.store_root), reuse=options.reuse, task_cpus=res.cpus_per_trial - TASK_HEAD_CPU,
        task_gpus=res.gpus_per_trial, llm_task_gpus=res.gpus_per_llm_trial, stage_wait_s=res.stage_wait_hours * 3600,
        keep="all" if options.keep_all_weights else frozenset(kept_keys(spec, chains)), data=prepare_data_refs(chains),
        export=frozenset(export_keys(chains, spec.export)),
        readers=releasable_handovers(chains, export_keys(chains, spec.export), options.keep_all_weights),
        progress=sweep_progress(folder.trials, folder.store_root, options.reuse, options.keep_all_weights, res,
                                ray.cluster_resources().get("CPU", 1.0), ray.cluster_resources().get("GPU", 0.0)))


def make_tuner(spec: SweepSpec, folder: RunFolder, settings, tracking: Tracking):
    """The Tune experiment: one trial per plan, in launch order, each in a placement group of its
    kind's resources; restored from the run folder on --resume."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from orchestrator.kinds import kind_of
    from orchestrator.progress import ProgressLine
    from orchestrator.recorder import RunRecorder
    from orchestrator.trial import run_trial

    res = spec.resources
    # the plans ride along with the trainable (tune.with_parameters, via the object store);
    # a trial's config is only its key, which is also its name and folder
    plans = {t.key: t for t in launch_order(list(folder.trials))}
    gpus = {key: kind_of(t).gpus(res) for key, t in plans.items()}  # an LLM trial takes its own share

    def resources(config: dict) -> tune.PlacementGroupFactory:
        bundle = {"CPU": res.cpus_per_trial - TASK_HEAD_CPU}
        if gpus[config["trial"]]:
            bundle["GPU"] = gpus[config["trial"]]
        return tune.PlacementGroupFactory([{"CPU": TASK_HEAD_CPU}, bundle], strategy=res.placement_strategy)

    trainable = tune.with_resources(tune.with_parameters(run_trial, plans=plans, settings=settings), resources)
    trials_dir = str(folder.tune_dir / "trials")
    if folder.restore:
        return tune.Tuner.restore(trials_dir, trainable, resume_unfinished=True, resume_errored=True)
    return tune.Tuner(
        trainable,
        # the trials' configs as given points rather than a grid search over keys: Tune's progress
        # table shows a column per searched parameter, which would repeat each trial's name (a
        # given point must name a key of the space: a plain value is no searched parameter)
        param_space={"trial": ""},
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=[{"trial": k} for k in plans],
                                             max_concurrent=res.max_concurrent_trials or 0),
            num_samples=len(plans),
            # a trial's actor imports torch and the trainables (seconds); trials of the same
            # resources take over a finished one's actor and placement group instead
            reuse_actors=True,
            trial_name_creator=lambda t: t.config["trial"],
            trial_dirname_creator=lambda t: t.config["trial"],
        ),
        run_config=tune.RunConfig(
            name="trials", storage_path=str(folder.tune_dir),
            failure_config=tune.FailureConfig(max_failures=res.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            # Tune's own loggers but TensorBoard's (_quiet_tune turns off the automatic ones):
            # each trial's result.json and progress.csv stay; emocal's metrics are in MLflow
            callbacks=[RunRecorder(tracking.recorder_state), ProgressLine(settings.progress), JsonLoggerCallback(),
                       CSVLoggerCallback()],
            verbose=1,
        ),
    )


# Tune settings read when an experiment starts. TensorBoard logging is added automatically unless
# switched off (and with it the "To visualize your results with TensorBoard" hint): emocal records
# to MLflow. Every generation's checkpoint forces an experiment-state snapshot (num_to_keep=1 keeps
# the state in step with the latest checkpoint, which --resume needs), so Tune's warning that
# snapshots come often says nothing here: threshold 0 turns it off.
_TUNE_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


@contextlib.contextmanager
def _quiet_tune():
    """_TUNE_ENV for the length of the experiment (a user's own setting of either wins)."""
    saved = {k: os.environ.get(k) for k in _TUNE_ENV}
    os.environ.update({k: v for k, v in _TUNE_ENV.items() if saved[k] is None})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def fit(tuner):
    """Run the experiment. SIGTERM (a scheduler's stop, `kill`, docker stop) ends it as Ctrl-C
    does: Tune stops the trials, their runs are marked KILLED and --resume continues."""
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        with _quiet_tune():
            return tuner.fit()
    finally:
        signal.signal(signal.SIGTERM, previous)


def finish_tracking(tracking: Tracking, wait_s: float) -> tuple[int, str | None]:
    """Wait at most `wait_s` for the queued MLflow writes, log whatever the store holds and MLflow
    lacks, and mark the runs of unfinished trials KILLED. Returns how many trials are unfinished,
    and what went wrong when MLflow could not be written (then nothing is marked)."""
    from orchestrator.recorder import RunRecorder
    from orchestrator.tracking import mark_unfinished

    recorder = RunRecorder(tracking.recorder_state)
    if not recorder.flush(wait_s):
        return 0, f"still failing after {wait_s:.0f} s ({recorder.pending_error()})"
    try:
        recorder.catch_up_all(strict=True)
        # Interrupted (Ctrl-C): Tune marks stopped trials TERMINATED, so the trials' own runs decide:
        # a trial that got to its end finished its run (FINISHED or FAILED); the rest are KILLED.
        return mark_unfinished(tracking.uri, tracking.runs.values()), None
    except Exception as exc:  # noqa: BLE001 - the tracking server is away: said, and recorded later
        return 0, f"{type(exc).__name__}: {exc}"


def tracking_behind(spec: SweepSpec, options: SweepOptions, tracking: Tracking, problem: str) -> None:
    """Say that MLflow lacks part of the sweep, and the command that fills it in later."""
    print(f"\nMLflow at {tracking.uri} could not be written: {problem}.\nThe trials' stages are all in the "
          f"stage store; nothing is lost. When MLflow answers again, log what it lacks (once, however often "
          f"it is run) and write the report with:\n  emocal record {spec.name} --runs {options.runs}",
          file=sys.stderr)


def write_report(spec: SweepSpec, folder: RunFolder, tracking: Tracking) -> None:
    """The report: into the run folder, the experiment's description in MLflow, and the terminal."""
    from orchestrator import report
    from orchestrator.tracking import describe_experiment

    tables = report.build_report(tracking.uri, spec.name, out_dir=folder.path)
    try:
        describe_experiment(tracking.uri, tracking.experiment_id, tables)
    except Exception as exc:  # noqa: BLE001 - the report is printed and written anyway
        _logger.warning("MLflow: could not put the report in the experiment's description: %s", exc)
    print(tables)
    print(f"\nReport written to {folder.path / 'report.md'} and {folder.path / 'report.csv'}")
    print(report.mlflow_ui_hint(tracking.uri, tracking.experiment_id))


def exit_code(spec: SweepSpec, folder: RunFolder, results, unfinished: int, tracked: bool = True) -> int:
    """130 when interrupted (with the command that continues), 1 when a trial failed, 3 when the
    trials finished but MLflow could not be written (`emocal record` fills it), else 0."""
    if unfinished:
        print(f"\nInterrupted: {unfinished} of {len(folder.trials)} trial(s) unfinished (their MLflow runs are "
              f"marked KILLED). Continue with: python -m orchestrator.sweep {spec.source_path} --resume",
              file=sys.stderr)
        return 130
    errors = [r for r in results if r.error is not None]
    if errors:
        print(f"\n{len(errors)} trial(s) failed:", file=sys.stderr)
        for r in errors:
            print(f"  {r.path}: {str(r.error).splitlines()[-1] if str(r.error) else r.error}", file=sys.stderr)
        return 1
    return 0 if tracked else 3


def run_sweep(spec: SweepSpec, args: argparse.Namespace) -> int:
    """Run a checked spec to its report; returns the exit code. The steps, in order: plan and
    open the run folder, start Ray, check the setup, MLflow runs, trial settings, Tune, the
    trials, the report. `_Phases` times them into sweep_seconds.json."""
    import ray

    # the driver's recorder logs to MLflow inside Tune's on_trial_result, which takes ~1 s on a busy
    # machine: Tune's 0.5 s "may be a performance bottleneck" warning would be noise (read at import)
    os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")
    from orchestrator.tracking import bound_http_retries

    bound_http_retries()
    options = SweepOptions.from_args(args)
    phases = _Phases()
    folder = open_run_folder(spec, options)
    if not check_disk(spec, folder, options):
        return 2
    phases.mark("plan")
    context = start_ray(options)
    phases.mark("ray_start")
    try:
        if not setup_ready(spec, folder, options, context):
            return 2
        tracking = open_tracking(spec, folder, options)
        tuner = make_tuner(spec, folder, trial_settings(spec, folder, options), tracking)
        phases.mark("mlflow_and_tune_setup")
        results = fit(tuner)
        phases.mark("trials")
    finally:
        ray.shutdown()
    phases.mark("ray_shutdown")
    unfinished, problem = finish_tracking(tracking, options.mlflow_wait_s)
    if problem is None:
        write_report(spec, folder, tracking)
    else:
        tracking_behind(spec, options, tracking, problem)
    phases.mark("report")
    phases.write(folder.path / "sweep_seconds.json")
    return exit_code(spec, folder, results, unfinished, tracked=problem is None)


def show_plan(args: argparse.Namespace) -> int:
    """`emocal plan SPEC`: the spec checked and its plan printed; nothing trains."""
    if getattr(args, "calibrate", None):
        from orchestrator.cost import calibrate_command

        return calibrate_command(args)
    if not args.spec:
        print("error: give a SPEC (or --calibrate RUN_FOLDER)", file=sys.stderr)
        return 2
    try:
        spec = load_spec(args.spec, data_root=str(args.data_root))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if spec.search is not None:
        from orchestrator.search_report import print_search_plan

        print_search_plan(spec, locations.run_folder(args.runs, spec.name))
        return 0
    trials = build_plan(spec)
    summary = {**plan_summary(spec, trials), "kept_weights": weights_summary(spec, trials)}
    estimate = problem = None
    if getattr(args, "estimate", False):
        from orchestrator.cost import CostError, format_estimate, plan_estimate

        try:
            estimate = plan_estimate(spec, trials, args)
            summary["estimate"] = estimate.to_dict()
        except CostError as exc:
            problem = summary["estimate"] = f"no estimate: {exc}"
    print_plan(spec, summary, args.format)
    if args.format == "table" and (estimate or problem):
        print(format_estimate(estimate, spec.resources.gpus_per_trial) if estimate else problem)
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
        if spec.search is not None:  # a search: Tune's searcher and scheduler over the method's options
            from orchestrator.tuning import run_search

            return run_search(spec, args)
        return run_sweep(spec, args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """`python -m orchestrator.sweep ...` (`emocal sweep` is orchestrator/cli.py's)."""
    from orchestrator.cli import run_module

    return run_module("sweep", argv)
