"""Before a sweep trains on a cluster: one check on every node, and a named fix for each that fails.

A cluster breaks a sweep in ways one machine never shows: a node that mounts the stage store
somewhere else trains every stage again and its finished stages never reach the driver; a node
with other data files or another emocal version trains different numbers under the same keys; a
node without the model fails hours in. So before any trial starts, a zero-CPU task pinned to each
alive node reads a marker the driver wrote into the run folder, fingerprints the data files,
resolves every model the sweep loads (the sweep's and any method's own), looks for WordNet when
an Electra+LCL row makes synonym copies, and reports the package version; the sweep refuses to
start while any node differs. The code reaches the workers through the image or install (docker/, or the same venv
path on every node), not Ray's runtime environment.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import ray


class ClusterError(RuntimeError):
    """A node cannot run this sweep; the message names it and the fix."""


@dataclass(frozen=True)
class Expected:
    run_dir: str
    marker: str  # the marker file's name inside run_dir
    token: str  # what the driver wrote into it
    data: dict[str, tuple]  # dataset name -> (source, data_root, split_seed, fingerprint on the driver)
    models: tuple[str, ...]  # the sweep's model and every method's own (electra_lcl's)
    version: str
    wordnet: bool = False  # the sweep makes synonym copies (trainables/methods/synonyms.py)


def probe(expected: Expected) -> dict:
    """What this node sees (runs on each node; also callable in-process)."""
    from orchestrator.tracking import package_version
    from trainables.data import data_fingerprint
    from trainables.models import PACKAGED_MINILM, resolve_model_path

    seen: dict = {"host": os.uname().nodename}
    try:
        seen["marker"] = Path(expected.run_dir, expected.marker).read_text()
    except OSError as exc:
        seen["marker"] = f"unreadable ({exc.strerror or exc})"
    seen["data"] = {}
    for name, (source, root, split_seed, _) in expected.data.items():
        try:
            seen["data"][name] = data_fingerprint(source, root, split_seed)
        except Exception as exc:  # noqa: BLE001 - reported per node, with its message
            seen["data"][name] = f"unreadable ({exc})"
    seen["models"] = {}
    for model in expected.models:
        try:
            path = resolve_model_path(model)
            local = model == PACKAGED_MINILM or os.path.isabs(path)
            seen["models"][model] = "ok" if not local or Path(path).is_dir() else f"{path} is not a folder here"
        except Exception as exc:  # noqa: BLE001
            seen["models"][model] = str(exc)
    if expected.wordnet:
        from trainables.methods.synonyms import wordnet_problem

        seen["wordnet"] = wordnet_problem() or "ok"
    seen["version"] = package_version()
    return seen


def problems(expected: Expected, node: str, seen: dict) -> list[str]:
    """Each way this node differs from the driver, as a sentence with its fix."""
    where = f"node {node} ({seen.get('host', '?')})"
    out = []
    if seen["marker"] != expected.token:
        out.append(f"{where} does not see the driver's run folder {expected.run_dir} (marker {seen['marker']}): the "
                   "run folder and stage store must be on storage every node mounts at the same path (e.g. NFS); "
                   "pass --runs such a folder")
    for name, (_, root, _, fingerprint) in expected.data.items():
        if seen["data"].get(name) != fingerprint:
            out.append(f"{where} has other data files for {name} under {root} ({seen['data'].get(name)}): put the "
                       "same files at the same path on every node (--data-root / EMOCAL_DATA)")
    for model in expected.models:
        if seen["models"].get(model) != "ok":
            out.append(f"{where} cannot load model {model}: {seen['models'].get(model)}; install it at the same "
                       "path on every node")
    if expected.wordnet and seen.get("wordnet") != "ok":
        out.append(f"{where} cannot make the LCL row's synonym copies: {seen.get('wordnet')}")
    if seen["version"] != expected.version:
        out.append(f"{where} runs emocal {seen['version']}, the driver {expected.version}: install the same "
                   "version on every node (the same image, docker/)")
    return out


def check_nodes(run_dir: Path, data: dict[str, tuple], models: tuple[str, ...], wordnet: bool = False) -> int:
    """Probe every alive node of the connected Ray cluster; raise ClusterError naming each failing one.

    Returns how many nodes were checked.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from orchestrator.tracking import package_version

    marker = f".node-check-{os.getpid()}"
    token = secrets.token_hex(8)
    (run_dir / marker).write_text(token)
    expected = Expected(str(run_dir), marker, token, data, models, package_version(), wordnet)
    try:
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        remote = ray.remote(num_cpus=0)(probe)
        refs = {n: remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote(expected)
                for n in nodes}
        found = [p for n, ref in refs.items() for p in problems(expected, n[:12], ray.get(ref, timeout=300))]
    finally:
        (run_dir / marker).unlink(missing_ok=True)
    if found:
        raise ClusterError("the cluster cannot run this sweep yet:\n  " + "\n  ".join(found))
    return len(nodes)
