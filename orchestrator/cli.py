"""`emocal`: one command for everything a user does; each subcommand is also `python -m orchestrator.X`.

    emocal sweep specs/quickstart.yaml --data-root DATA      # = python -m orchestrator.sweep ...
    emocal plan specs/full_paper.yaml --format json           # the dry run: check the spec, print the plan
    emocal report quickstart --runs /abs/runs --out results   # the paper's tables, from any directory
    emocal figures quickstart --dataset isear --out results
    emocal claims quickstart --dataset isear --out results
    emocal data stats --data-root DATA

The parsers live here and import nothing heavy: `--help` answers at once, without torch, Ray or
MLflow; a command's module is imported only when the command runs. Every command is one entry of
`COMMANDS` (its arguments and the function that runs it), so a new command is one more entry.
The same names mean the same thing in every command (orchestrator/locations.py): `--data-root`,
`--runs`, `--tracking-uri`, and `--out` for the folder a reader writes into.

docs/cli.md is this module's output (`python -m orchestrator.cli --markdown > docs/cli.md`);
tests/test_cli.py fails when the two differ.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from orchestrator.locations import DATA_ENV, DEFAULT_RUNS, TRACKING_ENV, TRACKING_URI_FILE, LocationError, \
    resolve_data_root

PICKS = ("seed-mean", "per-seed")  # orchestrator.report's SEED_MEAN, PER_SEED (a test keeps them equal)


@dataclass(frozen=True)
class Command:
    """One subcommand: what `emocal --help` says of it, its arguments, and what runs it.

    Attributes:
        summary: its line in `emocal --help`.
        description: the opening of its own `--help`.
        arguments: adds its arguments to a parser.
        target: "module:function"; the function takes the parsed arguments and returns the exit code.
        module: the module whose `python -m` runs this command too (None: only `emocal`).
    """

    summary: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    target: str
    module: str | None = None


# the options every command that has them shares, with one help text each
def _data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", metavar="DIR",
                   help=f"folder holding one folder per dataset (default: ${DATA_ENV}; one of the two is needed)")


def _runs(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--runs", metavar="DIR", default=DEFAULT_RUNS,
                   help=f"parent of the run folders; spec NAME's is DIR/NAME ({what}; default: ./{DEFAULT_RUNS})")


def _tracking_uri(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help=f"the MLflow store (default: ${TRACKING_ENV}, else the store recorded in the run folder's "
                        f"{TRACKING_URI_FILE}, else ./mlflow.db)")


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("experiment", metavar="NAME", help="the spec's name: its MLflow experiment and run folder")


class _Deprecated(argparse.Action):
    """An old option name that still works, saying which name to use instead."""

    def __init__(self, option_strings, dest, instead: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.instead = instead

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated; use {self.instead} (it means the same)", file=sys.stderr)
        setattr(namespace, self.dest, values)


class _DatasetNames:
    """The dataset registry's names, read when argparse first checks or lists one: importing
    trainables.data (numpy, every dataset's reader) would slow down every `--help`."""

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    @staticmethod
    def _names() -> list[str]:
        from trainables.data import DATASETS

        return sorted(DATASETS)


def _spec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="the sweep spec, e.g. specs/quickstart.yaml")
    _data_root(p)


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    _spec_arguments(p)
    _runs(p, "the sweep writes Tune's state, the stage store, the spec as run and the report there")
    p.add_argument("--output", metavar="DIR", dest="runs", action=_Deprecated, instead="--runs",
                   help="deprecated name of --runs")
    _tracking_uri(p)
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; train nothing (= emocal plan)")
    p.add_argument("--ignore-disk-check", action="store_true",
                   help="start even when the estimated stage store exceeds the free space where the run folder lives")
    p.add_argument("--format", choices=("table", "json"), default="table", help="how --dry-run prints the plan")
    p.add_argument("--resume", action="store_true", help="finish an interrupted sweep; re-runs nothing finished")
    p.add_argument("--no-reuse", action="store_true", help="do not share stages between trials")
    p.add_argument("--keep-all-weights", action="store_true",
                   help="store every stage's weights and training-set logits, not only those a student reads "
                        "(for exporting models); each stage's result.json lists what it kept under 'kept'")
    p.add_argument("--address", metavar="ADDRESS", help="join an existing Ray cluster (e.g. auto or ray://host:10001)")
    p.add_argument("--num-cpus", type=float, metavar="N", help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--num-gpus", type=float, metavar="N", help="GPUs of the local Ray instance (default: all)")
    p.add_argument("--dashboard-host", metavar="HOST", default="127.0.0.1", help="Ray dashboard bind address (default: 127.0.0.1)")
    p.add_argument("--dashboard-port", type=int, metavar="PORT", default=8265, help="Ray dashboard port (default: 8265)")
    p.add_argument("--no-dashboard", action="store_true", help="start the local Ray instance without its dashboard")
    p.add_argument("--mlflow-wait", type=float, metavar="S", default=120.0,
                   help="after the trials, wait at most S seconds for MLflow writes still queued (a tracking server "
                        "that went away); then say what is missing: `emocal record NAME` logs it later (default: 120)")


def _estimate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hardware", metavar="KIND",
                   help="price the plan for this hardware kind of the cost coefficients (default: this machine's, "
                        "e.g. cpu-2core-amd-epyc)")
    p.add_argument("--coefficients", metavar="FILE",
                   help="cost coefficients over the repo's (the file --calibrate writes)")


def _plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", nargs="?", help="the sweep spec, e.g. specs/quickstart.yaml")
    _data_root(p)
    _runs(p, "a search's plan counts the samples so far and the stages they shared there")
    p.add_argument("--format", choices=("table", "json"), default="table", help="how to print the plan")
    p.add_argument("--estimate", action="store_true",
                   help="also print what the sweep will cost: compute and wall hours, stage-store disk, object "
                        "store, GPU memory per trial")
    _estimate_arguments(p)
    p.add_argument("--num-cpus", type=float, metavar="N", help="with --estimate: CPUs for Ray (default: this machine's)")
    p.add_argument("--num-gpus", type=float, metavar="N", help="with --estimate: GPUs for Ray (default: this machine's)")
    p.add_argument("--calibrate", metavar="RUN_FOLDER",
                   help="fit the cost coefficients of this machine from a finished run folder (runs/NAME) and write "
                        "them to RUN_FOLDER/cost_coefficients.yaml; no SPEC needed")


def _report_arguments(p: argparse.ArgumentParser) -> None:
    _name(p)
    _runs(p, "where the sweep's store is recorded")
    _tracking_uri(p)
    p.add_argument("--out", metavar="DIR", help="also write report.md, report.csv and report_generations.csv here")
    p.add_argument("--ood-percent", type=float, metavar="P", help="which OOD fine-tuning percentage to tabulate (default 3)")
    p.add_argument("--pick", choices=PICKS, default=PICKS[0],
                   help="seed-mean: one generation per method, as the paper (default); per-seed: each seed's best")
    p.add_argument("--diagrams", metavar="DATASET",
                   help="also put each method's reliability diagram for DATASET side by side (in --out or .)")
    p.add_argument("--methods", nargs="+", metavar="METHOD", help="with --diagrams: only these methods, in this order")


def _figures_arguments(p: argparse.ArgumentParser) -> None:
    _name(p)
    p.add_argument("--dataset", required=True, metavar="DATASET", help="the ID dataset, e.g. isear")
    _runs(p, "where the sweep's store is recorded")
    _tracking_uri(p)
    p.add_argument("--out", metavar="DIR", default=".", help="folder for the PNGs and their JSON (default: .)")
    p.add_argument("--seed", type=int, metavar="SEED", help="the seed of the reliability diagrams (default: the smallest)")


def _claims_arguments(p: argparse.ArgumentParser) -> None:
    _name(p)
    p.add_argument("--dataset", required=True, metavar="DATASET", help="the ID dataset, e.g. isear")
    _runs(p, "where the sweep's store is recorded")
    _tracking_uri(p)
    p.add_argument("--out", metavar="DIR", help="also write the table as DIR/claims.md")


def _export_arguments(p: argparse.ArgumentParser) -> None:
    _name(p)
    p.add_argument("--dataset", required=True, metavar="DATASET", help="the ID dataset, e.g. isear")
    p.add_argument("--method", required=True, metavar="METHOD", help="the method (a table row), e.g. sim_mixup_csd")
    p.add_argument("--seed", type=int, metavar="SEED",
                   help="export this seed's run (default: at g*, the seed with the best ID validation macro F1; "
                        "ties: the smallest)")
    p.add_argument("--generation", type=int, metavar="G", help="export this generation (default: g*, as reported)")
    _runs(p, "where the sweep's stage store and recorder state are")
    _tracking_uri(p)
    _data_root(p)
    p.add_argument("--out", metavar="DIR", help="the export folder, new or empty (default: ./exports/SPEC-DATASET-METHOD)")
    p.add_argument("--alias", metavar="ALIAS", help="set this alias (e.g. champion) on the registered version")
    p.add_argument("--no-register", action="store_true", help="write the folder only; log and register nothing")


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="an export folder, or models:/NAME@ALIAS or models:/NAME/VERSION")
    p.add_argument("input", metavar="FILE", help="texts: .csv, .jsonl, or plain text (one text per line)")
    p.add_argument("--text-column", metavar="NAME", default="text",
                   help="the CSV column or JSONL key of the texts (default: text)")
    p.add_argument("--format", choices=("csv", "jsonl", "txt"), help="the input's format (default: from its suffix)")
    p.add_argument("--out", metavar="FILE", help="write here (.csv, or .jsonl) instead of CSV on stdout")
    p.add_argument("--abstain-below", type=float, metavar="P",
                   help="add an abstain column: true where the calibrated confidence is below P")
    _tracking_uri(p)


def _selective_arguments(p: argparse.ArgumentParser) -> None:
    _name(p)
    p.add_argument("--dataset", required=True, metavar="DATASET", help="the ID dataset, e.g. isear")
    _runs(p, "where the sweep's store is recorded")
    _tracking_uri(p)
    p.add_argument("--split", choices=("test", "validation"), default="test",
                   help="whose stored logits: test (default; the report's), or validation (to pick a threshold on)")
    p.add_argument("--out", metavar="DIR", default=".", help="folder for selective_DATASET.md, .json, .png (default: .)")


def _record_arguments(p: argparse.ArgumentParser) -> None:
    _name(p)
    _runs(p, "where the sweep's stage store and recorder state are")
    _tracking_uri(p)


def _data_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="command", required=True, metavar="{stats,fetch}")
    stats = sub.add_parser("stats", help="per-split, per-label counts and drops of the prepared datasets",
                           description="Per-split, per-label counts of each dataset in the layout of the paper's "
                                       "tables 13-18 (the paper's number beside ours), and the drops by reason.")
    stats.add_argument("names", nargs="*", metavar="NAME", help="datasets to show (default: all)")
    _data_root(stats)
    stats.add_argument("--format", choices=("table", "json"), default="table",
                       help="output layout; json: {dataset: {split: {label: count}}}")
    stats.add_argument("--cache-dir", metavar="DIR", help="prepared-split cache (default: none)")
    stats.add_argument("--split-seed", type=int, metavar="SEED", default=13, help="seed of the stratified splits (default: 13)")
    fetch = sub.add_parser("fetch", help="download a dataset into DATA_ROOT/NAME/",
                           description="Download a dataset from its public source into DATA_ROOT/NAME/. Offline, "
                                       "it fails with the URL, the error, and the files to put there by hand.")
    fetch.add_argument("name", metavar="NAME", choices=_DatasetNames(), help="dataset to download: %(choices)s")
    _data_root(fetch)
    fetch.set_defaults(new_data_root_ok=True)  # fetch may fill a folder that does not exist yet
    fetch.add_argument("--timeout", type=float, metavar="S", default=20.0, help="seconds per download before giving up (default: 20)")
    fetch.add_argument("--force", action="store_true", help="download even if the files are already there")


COMMANDS: dict[str, Command] = {
    "sweep": Command(
        "validate a spec, plan it, run every trial through Ray Tune, report",
        "Validate, plan, run every trial through Ray Tune, report. Everything about the spec is checked before "
        "Ray starts. Output goes to DIR/NAME/ of --runs (Tune's state, the stage store, the spec as run, the "
        "report); metrics go to the MLflow store, whose URI is recorded there for the readers. The Ray "
        "dashboard binds to 127.0.0.1 unless --dashboard-host says otherwise.",
        _sweep_arguments, "orchestrator.sweep:run", "orchestrator.sweep"),
    "plan": Command(
        "check a spec and print its plan (trials, stages, resources); train nothing",
        "Check a spec and print its plan: the trials, the stages they share, the resources; nothing trains "
        "(the same as emocal sweep SPEC --dry-run).",
        _plan_arguments, "orchestrator.sweep:show_plan"),
    "report": Command(
        "the paper's tables from a sweep's MLflow store",
        "MLflow -> the paper's tables: Tables 1 and 2 (one generation per method), 11 and 12 (each).",
        _report_arguments, "orchestrator.report:run", "orchestrator.report"),
    "figures": Command(
        "reliability diagrams, per-generation and OOD-percentage plots, with their numbers",
        "The pictures a reader of a run looks at before its tables, drawn from its MLflow store: "
        "reliability_DATASET.png, generations_DATASET.png, ood_percent_DATASET.png, each with its JSON.",
        _figures_arguments, "orchestrator.figures:run", "orchestrator.figures"),
    "claims": Command(
        "the paper's directional claims, checked against a sweep",
        "The paper's directional claims, checked against a run's MLflow store by rules fixed in advance.",
        _claims_arguments, "orchestrator.claims:run", "orchestrator.claims"),
    "selective": Command(
        "selective prediction: risk-coverage curves and AURC per method at g*",
        "What calibration buys when abstaining on low confidence: per method at g*, from the stored test logits "
        "at the temperature it is reported with, the risk-coverage curve and its area (AURC), mean ± std over "
        "seeds: selective_DATASET.md, .json and .png.",
        _selective_arguments, "orchestrator.selective:run", "orchestrator.selective"),
    "export": Command(
        "a method's reported run as a folder that loads alone, logged and registered in MLflow",
        "Export one (dataset, method) of a sweep at its reported generation g*: a folder with the weights "
        "(safetensors), config, tokenizer and calibration.json, checked against the run's stored test logits; "
        "then an MLflow model of the run, registered as SPEC-DATASET-METHOD. A stage stored without weights is "
        "trained again and exported only if its test logits come out bit-identical.",
        _export_arguments, "orchestrator.export:run", "orchestrator.export"),
    "predict": Command(
        "calibrated probabilities for a file of texts, from an export or a registered model",
        "Label a CSV, JSONL or text file with an exported model: one output row per input row with the label, "
        "its calibrated confidence, every class's probability, flags for empty and cut texts, and with "
        "--abstain-below an abstain column.",
        _predict_arguments, "orchestrator.predict:run", "orchestrator.predict"),
    "record": Command(
        "log to MLflow what a sweep's stage store holds and its runs lack (after a tracking outage)",
        "Fill MLflow from the stage store: every finished generation a run of sweep NAME lacks is logged, once "
        "(run again, it logs nothing twice); runs with all of their generations are FINISHED, the rest KILLED; "
        "the report is written into the run folder. For a sweep that ended while its tracking server was away.",
        _record_arguments, "orchestrator.record:run", "orchestrator.record"),
    "data": Command(
        "see the datasets (stats) and download them (fetch)",
        "Seeing and getting the data: emocal data stats|fetch.",
        _data_arguments, "orchestrator.data:run", "orchestrator.data"),
}


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def command_parser(name: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of one command on its own, e.g. for `python -m orchestrator.report`."""
    command = COMMANDS[name]
    p = argparse.ArgumentParser(prog=prog or f"emocal {name}", description=command.description,
                                formatter_class=_formatter)
    command.arguments(p)
    return p


def build_parser(prog: str = "emocal") -> argparse.ArgumentParser:
    """`emocal`'s parser: one subparser per entry of COMMANDS."""
    p = argparse.ArgumentParser(prog=prog, formatter_class=_formatter, description=(
        "emocal: Ray-distributed sweeps reproducing 'Model Calibration for Emotion Detection'. "
        "Each command is also `python -m orchestrator.COMMAND` where that module exists; "
        "`emocal COMMAND --help` says more."))
    p.add_argument("--markdown", action="store_true", help=argparse.SUPPRESS)  # docs/cli.md, regenerated
    sub = p.add_subparsers(dest="emocal_command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.arguments(sub.add_parser(name, help=command.summary, description=command.description,
                                         formatter_class=_formatter))
    return p


def dispatch(name: str, args: argparse.Namespace) -> int:
    """Run command `name` on its parsed arguments: the shared locations resolved, its module imported."""
    try:
        if "data_root" in vars(args):  # one rule and one error for every command that reads data
            args.data_root = resolve_data_root(args.data_root, must_exist=not getattr(args, "new_data_root_ok", False))
        module, function = COMMANDS[name].target.split(":")
        return getattr(importlib.import_module(module), function)(args)
    except LocationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_module(name: str, argv: Sequence[str] | None = None) -> int:
    """`python -m orchestrator.X ...`: command `name` parsed under that module's name, then run."""
    return dispatch(name, command_parser(name, prog=f"python -m {COMMANDS[name].module}").parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """The `emocal` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.markdown:
        print(reference_markdown(), end="")
        return 0
    if args.emocal_command is None:
        parser.print_help(sys.stderr)
        return 2
    return dispatch(args.emocal_command, args)


# docs/cli.md: generated from the parsers above, so it cannot say what the code does not
def _option_cell(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"`{name} ...`" if action.nargs in ("*", "+") else f"`{name}`"
    flag = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{flag}`"
    if action.metavar is None and action.choices is not None:
        value = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        value = action.metavar or action.dest.upper()
    return f"`{flag} {value} ...`" if action.nargs in ("*", "+") else f"`{flag} {value}`"


def _help_cell(action: argparse.Action) -> str:
    text = (action.help or "") % {"choices": ", ".join(map(str, action.choices or ())), "prog": ""}
    if getattr(action, "required", False) and action.option_strings:
        text = f"required; {text}"
    return text.replace("|", "\\|")


def _parser_markdown(title: str, parser: argparse.ArgumentParser, out: list[str], level: int) -> None:
    out += [f"{'#' * level} `{title}`", "", parser.description or "", ""]
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    usage = parser.format_usage().split(":", 1)[1].strip()
    out += ["```", " ".join(usage.split()), "```", ""]
    rows = [a for a in parser._actions if a.help is not argparse.SUPPRESS and not isinstance(
        a, (argparse._HelpAction, argparse._SubParsersAction))]
    if rows:
        out += ["| argument | what it does |", "|---|---|"]
        out += [f"| {_option_cell(a)} | {_help_cell(a)} |" for a in rows]
        out.append("")
    for action in subparsers:
        for name, sub in action.choices.items():
            _parser_markdown(f"{title} {name}", sub, out, level + 1)


def reference_markdown() -> str:
    """The CLI reference (docs/cli.md): every command, its usage and each argument's help."""
    out = ["# emocal command line", "",
           "Generated from the parsers in orchestrator/cli.py by `python -m orchestrator.cli --markdown > docs/cli.md`; "
           "tests/test_cli.py fails when this file and the parsers differ. Each command also runs as "
           "`python -m orchestrator.COMMAND` where that module exists (`plan` is `python -m orchestrator.sweep SPEC "
           "--dry-run`).", "",
           "Names mean one thing in every command:", "",
           f"- `--data-root DIR`: the folder holding one folder per dataset; default `${DATA_ENV}`. Neither given is "
           "an error, the same for every command.",
           f"- `--runs DIR`: the parent of the run folders (default `./{DEFAULT_RUNS}`); spec NAME's run folder is "
           "`DIR/NAME`.",
           f"- `--tracking-uri URI`: the MLflow store; default `${TRACKING_ENV}`, else the store the sweep recorded "
           f"in `DIR/NAME/{TRACKING_URI_FILE}`, else `./mlflow.db`. So a reader finds the sweep's store from any "
           "directory given `--runs`.",
           "- `--out DIR`: the folder a reader (report, figures, claims) writes its files into.", "",
           "| command | what it does |", "|---|---|"]
    out += [f"| `emocal {name}` | {command.summary} |" for name, command in COMMANDS.items()]
    out.append("")
    for name in COMMANDS:
        _parser_markdown(f"emocal {name}", command_parser(name), out, 2)
    return "\n".join(line.rstrip() for line in out).rstrip() + "\n"


if __name__ == "__main__":
    sys.exit(main())
