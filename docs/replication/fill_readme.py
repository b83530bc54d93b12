"""Fills the files that copy from the replication's outputs: docs/replication/README.md and the README's blocks.

    python docs/replication/fill_readme.py            # both (make.sh runs this, after the run's report)
    python docs/replication/fill_readme.py --readme   # only the README's generated blocks (needs no run)
    python docs/replication/fill_readme.py --check    # exit 1 when a README block differs from its source

docs/replication/README.md is README.template.md with the status, commits and wall time of the run
(its log, its run folder and its MLflow store) and the tables make.sh wrote. The top-level README
holds copies between `<!-- generated:NAME -->` and `<!-- /generated -->`, each the file that
`BLOCKS` names; tests/test_readme.py fails when a copy drifts from its source.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root
# README block name -> the file it copies (relative to the repository root)
BLOCKS = {"claims": "docs/replication/claims.md"}
_BLOCK = re.compile(r"(<!-- generated:(\w+) -->\n)(.*?)(<!-- /generated -->)", re.S)


def fill_blocks(text: str, root: Path = ROOT) -> str:
    """`text` with every generated block replaced by its source file's content.

    Raises:
        ValueError: a block names no source in BLOCKS, or a source in BLOCKS has no block.
    """
    seen = []

    def fill(m: re.Match) -> str:
        name = m.group(2)
        if name not in BLOCKS:
            raise ValueError(f"README block generated:{name} has no source; add it to BLOCKS in {Path(__file__).name}")
        seen.append(name)
        body = (root / BLOCKS[name]).read_text()
        return m.group(1) + body.rstrip("\n") + "\n" + m.group(4)

    out = _BLOCK.sub(fill, text)
    missing = sorted(set(BLOCKS) - set(seen))
    if missing:
        raise ValueError(f"README has no block for {missing}; add <!-- generated:NAME --> ... <!-- /generated -->")
    return out


def fill_readme(root: Path = ROOT) -> bool:
    """Rewrites the README's generated blocks; True when something changed."""
    readme = root / "README.md"
    old = readme.read_text()
    new = fill_blocks(old, root)
    readme.write_text(new)
    return new != old


def fill_replication_readme(root: Path = ROOT) -> None:
    """docs/replication/README.md from README.template.md and the files make.sh wrote (status, commits,
    wall time, tables). Run from the repository root where the replication ran."""
    from mlflow import MlflowClient

    d = root / "docs/replication"
    log = (root / "runs/replication_cpu.log").read_text(errors="replace")
    # one `/usr/bin/time -v` block per start of the sweep (the restart, then each --resume)
    walls = re.findall(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", log)
    wall = " + ".join(walls) + " (h:mm:ss)" if walls else "UNFINISHED"
    started = (root / "runs/replication_cpu.started").read_text().strip()
    resumed = root / "runs/replication_cpu.resumed"
    if resumed.exists():
        started += f", resumed {resumed.read_text().strip()} (`--resume`, next session)"
    stages = len((root / "runs/replication_cpu/stages/trained.log").read_text().split())
    client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db"))
    exp = client.get_experiment_by_name("replication_cpu")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`emocal.status` = 'current'")
    commits = sorted({r.data.tags.get("emocal.git_commit", "") for r in runs})
    versions = sorted({r.data.tags.get("emocal.version", "") for r in runs})
    done = sorted(r.info.run_name for r in runs if r.info.status == "FINISHED")
    open_ = sorted(r.info.run_name for r in runs if r.info.status != "FINISHED")
    status = (f"{len(done)} of {len(runs)} trials finished when these files were made ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"
              + (f"; unfinished: {', '.join(open_)} (the session ended; `python -m orchestrator.sweep specs/replication_cpu.yaml --resume` "
                 "finishes them where the run folder survives, then `docs/replication/make.sh`)" if open_ else ""))
    report = (d / "report.md").read_text().split("\n", 1)[1].replace("\n### ", "\n#### ")
    claims = (d / "claims.md").read_text()
    t = (d / "README.template.md").read_text()
    t = (t.replace("{{COMMIT}}", ", ".join(commits)).replace("{{VERSION}}", ", ".join(versions))
          .replace("{{STARTED}}", started).replace("{{STATUS}}", status).replace("{{WALL}}", wall).replace("{{STAGES}}", str(stages))
          .replace("{{CLAIMS}}", claims).replace("{{REPORT}}", report))
    (d / "README.md").write_text(t)
    print(status); print("commit", commits, "wall", wall, "stages", stages, "started", started)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python docs/replication/fill_readme.py", description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--readme", action="store_true", help="only the README's generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 when a README block differs from its source")
    args = p.parse_args(argv)
    if args.check:
        text = (ROOT / "README.md").read_text()
        if fill_blocks(text, ROOT) != text:
            print(f"{ROOT / 'README.md'} differs from {', '.join(BLOCKS.values())}; "
                  "run: python docs/replication/fill_readme.py --readme", file=sys.stderr)
            return 1
        return 0
    if not args.readme:
        fill_replication_readme(Path.cwd())
    print(f"README.md {'updated' if fill_readme(ROOT) else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
