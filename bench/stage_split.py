"""Where a stage's time goes: setup (data, tokeniser, model build) against training, evaluation
and OOD work, from the stages a sweep stored (issue 14's first figure). Since issue 14 a student
no longer computes its teacher's training-set logits: a stage that has a student computes them
after its own training, inside its "evaluate" seconds, with the model already loaded.

    python bench/stage_split.py runs/quickstart            # after `python -m orchestrator.sweep specs/quickstart.yaml`

Reads `<run dir>/stages/*/result.json` (each stage records `seconds` since this script was
added; older stages are skipped) and prints one row per stage, teachers (generation 1) and
students apart, then the mean share of setup per kind. Writing the stage to the store is not
in these figures (it happens after the result is made).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PARTS = ("setup", "train", "evaluate", "ood")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", help="the sweep's run folder, e.g. runs/quickstart")
    args = p.parse_args(argv)
    rows = []
    for path in sorted(Path(args.run_dir, "stages").glob("*/result.json")):
        result = json.loads(path.read_text())
        if "seconds" in result:
            rows.append((result["generation"], result["key"], result["seconds"]))
    if not rows:
        print(f"no stage with timings under {args.run_dir}/stages (run the sweep with this emocal first)",
              file=sys.stderr)
        return 2
    print("| stage | generation | " + " | ".join(f"{x} s" for x in PARTS) + " | setup share |")
    print("|---|---|" + "---|" * (len(PARTS) + 1))
    shares: dict[str, list[float]] = {}
    for generation, key, sec in sorted(rows):
        total = sum(sec.get(x, 0.0) for x in PARTS)
        share = sec["setup"] / total if total else 0.0
        shares.setdefault("teacher (g1)" if generation == 1 else "student (g>=2)", []).append(share)
        print(f"| {key} | {generation} | " + " | ".join(f"{sec.get(x, 0.0):.1f}" for x in PARTS) + f" | {share:.0%} |")
    for kind, values in shares.items():
        print(f"\nmean setup share, {kind}: {sum(values) / len(values):.0%} of {len(values)} stage(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
