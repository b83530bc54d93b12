"""docs/replication/README.md from README.template.md and the files make.sh wrote (status, commits, wall time, tables)."""
import os
import re
import time
from pathlib import Path

from mlflow import MlflowClient

root = Path.cwd()  # the repository root, where the run ran
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
