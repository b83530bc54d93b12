"""`emocal record NAME` (= `python -m orchestrator.record NAME`): fill MLflow from the stage store.

    emocal record full_paper --runs runs          # after a sweep said MLflow could not be written

A sweep whose tracking server was still away when its trials ended says so and exits 3; the
stages are in the store, and this command logs to MLflow what its runs lack, later, with the
same recorder the sweep uses (orchestrator/recorder.py), so running it twice logs nothing twice.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # parse in the light CLI first: `--help` imports neither Ray nor MLflow
    from orchestrator.cli import run_module

    sys.exit(run_module("record"))

import argparse
import json
import logging
import time


def run(args: argparse.Namespace) -> int:
    """`emocal record NAME`: log to MLflow what the stage store holds and its runs lack, once.

    For a sweep that ended with its tracking server away (it says so): the runs it made are in
    `<runs>/NAME/mlflow_runs.json`; every generation a run lacks is logged from the stage store,
    a run with all of its generations is FINISHED, one without is KILLED, and the report is
    written into the run folder as the sweep would have. Run again, it logs nothing twice.
    """
    from orchestrator import locations, report
    from orchestrator.recorder import RunRecorder
    from orchestrator.tracking import bound_http_retries, mark_unfinished

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bound_http_retries()
    run_dir = locations.run_folder(args.runs, args.experiment)
    state_path = run_dir / "mlflow_runs.json"
    if not state_path.is_file():
        print(f"error: {state_path} is missing: no sweep named {args.experiment} made MLflow runs under "
              f"{run_dir.parent} (--runs)", file=sys.stderr)
        return 2
    state = json.loads(state_path.read_text())
    if args.tracking_uri and args.tracking_uri != state["uri"]:
        state["uri"] = args.tracking_uri
        state_path.write_text(json.dumps(state, indent=1))
    recorder = RunRecorder(state_path)
    started = time.perf_counter()
    try:
        recorder.catch_up_all(strict=True)
        killed = mark_unfinished(state["uri"], [t["run_id"] for t in state["trials"].values()])
    except Exception as exc:  # noqa: BLE001 - said plainly: the server is still away, or refuses us
        print(f"error: MLflow at {state['uri']} could not be written ({type(exc).__name__}: {exc}); nothing is "
              "lost, the stages stay in the store: run this again when it answers", file=sys.stderr)
        return 1
    print(f"recorded {recorder.generations_logged} generation(s) MLflow lacked, for {len(state['trials'])} "
          f"trial(s), in {time.perf_counter() - started:.1f} s; {killed} run(s) unfinished (KILLED)")
    tables = report.build_report(state["uri"], args.experiment, out_dir=run_dir)
    print(tables)
    print(f"\nReport written to {run_dir / 'report.md'} and {run_dir / 'report.csv'}")
    return 0
