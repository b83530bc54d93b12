"""A search's report: every sample on validation, the chosen configuration, the stages shared, the picture.

    runs/<name>/search_report.md    samples (options, generations, outcome, objective), the choice,
                                    how many stages the samples shared, and the confirm step's
                                    test numbers over the spec's seeds in the paper's layout
    runs/<name>/search_front.png    validation macro F1 against validation ECE of every sample,
                                    the trade-off front marked, the chosen one ringed (+ .json)

Everything in the choice is validation data (orchestrator/search.py); the test numbers are read
only from the confirm step's runs, after the choice. The same counts answer `emocal plan SPEC`
for a search with a run folder (`print_search_plan`).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

from orchestrator.search import SearchSpec, trade_off_front
from orchestrator.tuning import Sample, best_sample, load_context, read_samples


def stage_counts(samples: list[Sample], baseline_key: str | None, trained_log: Path) -> dict:
    """What sharing saved: the stages the samples so far read (with the baseline, once), how many
    of them were distinct, and how many the store's log says were trained."""
    used = [k for s in samples for k in s.all_stages[:len(s.all_stages) - len(s.stages) + len(s.finished)]]
    distinct = set(used) | ({baseline_key} if baseline_key else set())
    trained = trained_log.read_text().split() if trained_log.is_file() else []
    return {"samples": len(samples), "generations_run": sum(len(s.finished) for s in samples),
            "stage_uses": len(used) + (1 if baseline_key else 0), "distinct": len(distinct),
            "trained": len([k for k in trained if k in distinct]), "trained_twice": len(trained) - len(set(trained))}


def _ece_metric(search: SearchSpec, scaled: bool) -> str:
    metric = search.objective.metric
    return metric if "ece" in metric else ("val_ece_ts" if scaled else "val_ece")


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def search_markdown(run_dir: Path) -> tuple[str, dict]:
    """The search's part of the report, and the numbers behind it (for the picture and tests)."""
    state, samples, baseline_f1 = read_samples(run_dir)
    context = load_context(run_dir, state["data_root"])
    search, method = context.search, context.method
    best = best_sample(samples, search.objective.mode)
    baseline = context.baseline
    counts = stage_counts(samples, baseline.key() if baseline else None, Path(state["store"]) / "trained.log")
    ece = _ece_metric(search, method.reports_scaled_ece)
    buf = io.StringIO()
    o = search.objective
    buf.write(f"## Search {context.spec.name}: {method.name} on {context.spec.datasets[0].name}\n\n")
    buf.write(f"{search.algorithm} search, scheduler {search.scheduler.kind}"
              + (f" (grace {search.scheduler.grace_period}, reduction {search.scheduler.reduction_factor}, "
                 "time unit: the generation)" if search.scheduler.kind == "asha" else "")
              + f", {len(samples)} samples on seed {context.seed}, at most {search.max_concurrent} at once. "
              f"Objective: {o.mode} {o.metric} at each sample's g* (best validation macro F1)")
    if o.max_f1_drop is not None:
        buf.write(f", validation macro F1 at most {o.max_f1_drop:g} points below the CE baseline's "
                  f"({_fmt(baseline_f1) if baseline_f1 is not None else 'not trained'})")
    buf.write(". Validation data only.\n\n")
    paths = [p.path for p in search.params]
    shown = [m for m in dict.fromkeys(("val_macro_f1", ece, o.metric))]  # each metric once
    buf.write("| sample | " + " | ".join(paths) + " | generations | outcome | g* | " + " | ".join(shown)
              + " | feasible |\n")
    buf.write("|---" * (len(paths) + 5 + len(shown)) + "|\n")
    for s in samples:
        obj = s.objective
        g = obj.get("search_generation")
        row = s.finished[g - 1] if g else {}
        mark = " (chosen)" if best is not None and s.trial_id == best.trial_id else ""
        buf.write(f"| {s.name}{mark} | " + " | ".join(_fmt(s.config[p]) for p in paths)
                  + f" | {len(s.finished)} of {len(s.stages)} | {s.outcome} | {g or ''} | "
                  + " | ".join(_fmt(row.get(m, "")) for m in shown)
                  + f" | {'yes' if obj.get('search_feasible') else 'no'} |\n")
    stopped = [s.name for s in samples if s.outcome == "stopped"]
    failed = [s.name for s in samples if s.outcome == "failed"]
    if failed:
        buf.write(f"\nFailed: {', '.join(failed)} (the trials' errors are in the sweep's output; a diverged stage "
                  "is never trained again).\n")
    if search.scheduler.kind == "asha":
        buf.write(f"\nStopped by ASHA: {len(stopped)} of {len(samples)} samples"
                  + (f" ({', '.join(stopped)})" if stopped else "") + ".\n")
    else:
        buf.write("\nNo scheduler: every sample ran its whole chain.\n")
    buf.write(f"Stages: the samples ran {counts['generations_run']} generations and read {counts['stage_uses']} "
              f"stages (data maps and the baseline included); {counts['distinct']} distinct, "
              f"{counts['trained']} trained ({counts['stage_uses'] - counts['distinct']} shared, trained once; "
              f"{counts['trained_twice']} trained twice).\n\n")
    if best is not None:
        buf.write(f"Chosen on validation: {best.name}: "
                  + ", ".join(f"{k} = {_fmt(v)}" for k, v in best.config.items())
                  + f" ({o.metric} {_fmt(best.objective['search_value'])} at generation "
                    f"{best.objective['search_generation']}).\n")
    points = {}
    for s in samples:
        g = s.objective.get("search_generation")
        if g:
            points[s.name] = (s.finished[g - 1][ece], s.finished[g - 1]["val_macro_f1"])
    names = list(points)
    front = [names[i] for i in trade_off_front([(f1, e) for e, f1 in points.values()])]
    numbers = {"samples": samples, "best": best, "counts": counts, "stopped": stopped, "points": points,
               "front": front, "ece_metric": ece, "baseline_f1": baseline_f1}
    return buf.getvalue(), numbers


def write_search_report(run_dir: Path, confirm_dir: Path | None, confirm_name: str | None, uri: str) -> str:
    """search_report.md and search_front.png in the run folder, the picture and the report also on
    the search's parent MLflow run; returns the Markdown (also printed)."""
    from mlflow import MlflowClient

    from trainables.plots import trade_off_plot

    text, numbers = search_markdown(run_dir)
    best = numbers["best"]
    trade_off_plot(numbers["points"], numbers["front"], best.name if best else None, run_dir / "search_front.png",
                   x_label=f"{numbers['ece_metric']} (%)", title=f"search {run_dir.name}: every sample at its g*",
                   stopped=numbers["stopped"])
    text += f"\nPicture: {run_dir / 'search_front.png'} (validation F1 against ECE; front: {', '.join(numbers['front'])}).\n"
    search_part = text
    if confirm_dir is not None and (confirm_dir / "report.md").is_file():
        text += (f"\n## Confirm step: the chosen configuration and CE on every seed (test numbers; "
                 f"MLflow experiment {confirm_name})\n\n" + (confirm_dir / "report.md").read_text())
    (run_dir / "search_report.md").write_text(text)
    state = json.loads((run_dir / "search_state.json").read_text())
    client = MlflowClient(uri)
    for f in ("search_report.md", "search_front.png", "search_front.json"):
        client.log_artifact(state["parent_run_id"], str(run_dir / f))
    print("\n" + search_part + f"\nThe confirm step's tables are above; all of it: {run_dir / 'search_report.md'}")
    return text


def print_search_plan(spec, run_dir: Path) -> None:
    """`emocal plan SPEC` of a search: the space, the rules, and the samples and stages so far."""
    s = spec.search
    print(f"search {spec.name}: {s.algorithm}, {s.num_samples} samples of {s.method} on {spec.datasets[0].name}, "
          f"seed {spec.seeds[0]} (the chosen configuration then on seeds {list(spec.seeds)}), "
          f"scheduler {s.scheduler.kind}, at most {s.max_concurrent} at once")
    for p in s.params:
        print(f"  {p.path:32s} {p.domain} {list(p.values)}")
    o = s.objective
    print(f"objective: {o.mode} {o.metric} at g*" + (f", validation macro F1 >= CE baseline - {o.max_f1_drop:g}"
                                                      if o.max_f1_drop is not None else ""))
    if not (run_dir / "search_state.json").is_file():
        print("no samples yet (nothing in the run folder)")
        return
    _, numbers = search_markdown(run_dir)
    c = numbers["counts"]
    print(f"so far: {c['samples']} samples, {c['generations_run']} generations; {c['stage_uses']} stages read, "
          f"{c['distinct']} distinct ({c['stage_uses'] - c['distinct']} shared), {c['trained']} trained; "
          f"{len(numbers['stopped'])} stopped by ASHA")
