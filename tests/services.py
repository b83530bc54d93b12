"""Test-only servers as docker/compose.yaml runs them, outside Docker: PostgreSQL and the MLflow server.

`Postgres` is a throw-away cluster of Debian's PostgreSQL in a temporary folder, listening on
127.0.0.1 only, with the compose file's user and database (`mlflow`, password authentication).
`MlflowServer` runs the compose file's `mlflow` service command and environment (read from
docker/compose.yaml, so the two cannot drift) with its hosts and folders mapped onto this
machine: `postgres:5432` to the throw-away cluster, `/app/...` to a temporary folder, the bind
address to 127.0.0.1. Secrets reach the servers as environment variables or files only, never a
command line. Each is stopped by its process group; `stop()` and `start()` again is the
restart a fault test injects.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.test_docker import DOCKER, command, resolve
from tests.test_sweep_e2e import free_port

ADMIN = "admin"  # the basic-auth app's admin user (MLflow's default name)


def postgres_bin() -> Path | None:
    """Debian's newest PostgreSQL server programs, or None where none is installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as Debian's `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _stop_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, wait_s: float = 20) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Postgres:
    """A PostgreSQL cluster of user `mlflow` and database `mlflow` on 127.0.0.1:port, in a temporary folder."""

    def __init__(self, user: str = "mlflow", database: str = "mlflow"):
        self.bin = postgres_bin()
        self.user, self.database = user, database
        self.password = secrets.token_hex(16)
        self.port = free_port()
        # not under pytest's 0700 basetemp: the postgres user must reach it
        self.root = Path(tempfile.mkdtemp(prefix="emocal-pg-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Postgres":
        data, pwfile = self.root / "data", self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
        log = open(self.root / "initdb.log", "w")
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(data), "-U", self.user, f"--pwfile={pwfile}",
                                     "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"]),
                       stdout=log, stderr=subprocess.STDOUT, check=True)
        pwfile.unlink()
        # fsync off: a throw-away cluster, and the machine is shared; sockets in our folder only
        self.proc = subprocess.Popen(
            _as_postgres([str(self.bin / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                          "-k", str(self.root), "-c", "fsync=off", "-c", "full_page_writes=off"]),
            stdout=open(self.root / "postgres.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if ready.returncode == 0:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited:\n" + (self.root / "postgres.log").read_text()[-2000:])
            time.sleep(0.2)
        else:
            raise RuntimeError("postgres did not get ready in 60 s")
        self.createdb(self.database)
        return self

    def createdb(self, name: str) -> None:
        env = {**os.environ, "PGPASSWORD": self.password}
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name],
                       env=env, check=True, capture_output=True)

    def stop(self) -> None:
        _stop_group(self.proc)  # SIGTERM: PostgreSQL's "smart" shutdown
        shutil.rmtree(self.root, ignore_errors=True)


def compose_mlflow() -> tuple[list[str], dict[str, str], dict[str, str]]:
    """The `mlflow` service's command, environment and config files (target path -> text) as
    docker/compose.yaml has them, with the required variables as placeholders to map."""
    raw = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    placeholders = {"POSTGRES_PASSWORD": "@PGPASSWORD@", "RAY_AUTH_TOKEN": "@RAYTOKEN@",
                    "MLFLOW_ADMIN_PASSWORD": "@ADMINPASSWORD@", "MLFLOW_SECRET_KEY": "@SECRETKEY@"}
    service = resolve(raw["services"]["mlflow"], placeholders)
    files = {c["target"]: raw["configs"][c["source"]]["content"] for c in service.get("configs", [])}
    files.update({v.split(":")[1] + "/": None for v in service.get("volumes", [])})  # folders: None
    return command(service), {k: str(v) for k, v in service["environment"].items()}, files


class MlflowServer:
    """compose.yaml's MLflow service on this machine: backed by `pg`, artifacts in a temporary folder."""

    def __init__(self, pg: Postgres, folder: Path):
        self.pg, self.folder = pg, Path(folder)
        self.port = free_port()
        self.admin_password = secrets.token_hex(16)
        self.secret_key = secrets.token_hex(16)
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.argv, self.env = self._mapped()
        self.log = self.folder / "mlflow-server.log"

    def _mapped(self) -> tuple[list[str], dict[str, str]]:
        argv, env, files = compose_mlflow()
        values = {"@PGPASSWORD@": self.pg.password, "@ADMINPASSWORD@": self.admin_password,
                  "@SECRETKEY@": self.secret_key, "postgres:5432": f"127.0.0.1:{self.pg.port}",
                  "/app/": f"{self.folder}/app/", "/etc/": f"{self.folder}/etc/", "0.0.0.0": "127.0.0.1"}

        def mapped(text: str) -> str:
            for old, new in values.items():
                text = text.replace(old, new)
            return text

        argv = [mapped(a) for a in argv]
        argv[argv.index("--port") + 1] = str(self.port)
        self.artifacts = Path(argv[argv.index("--artifacts-destination") + 1])
        argv += ["--workers", "1"]  # the one setting not compose's: MLflow's default 4 on a 2-core test machine
        env = {k: mapped(v) for k, v in env.items()}
        for target, text in files.items():  # the volumes and files compose mounts, the files from the same text
            path = Path(mapped(target))
            path.mkdir(parents=True, exist_ok=True) if text is None else path.parent.mkdir(parents=True, exist_ok=True)
            if text is not None:
                path.write_text(mapped(text))
        argv[0] = str(Path(sys.executable).with_name("mlflow"))
        return argv, env

    def start(self, timeout_s: float = 120) -> "MlflowServer":
        env = {**os.environ, **self.env}
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(name, None)
        self.proc = subprocess.Popen(self.argv, env=env, stdout=open(self.log, "a"), stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.folder)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{self.uri}/health", timeout=2)
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        raise RuntimeError(f"mlflow server not healthy in {timeout_s:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self, crash: bool = False) -> None:
        """End the server; `crash`: SIGKILL its every process at once, as a machine or OOM kill does."""
        _stop_group(self.proc, signal.SIGKILL if crash else signal.SIGTERM)
        self.proc = None

    def client_env(self) -> dict[str, str]:
        """What the sweep's driver gets: the server's URI and the admin's credentials, by environment."""
        return {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_TRACKING_USERNAME": ADMIN,
                "MLFLOW_TRACKING_PASSWORD": self.admin_password}


def _require(problem: str | None) -> None:
    """Skip saying why, or fail under CI=true, where .ci/run installs PostgreSQL."""
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem} (CI=true: .ci/run installs postgresql; the tracking-server tests must run)",
                        pytrace=False)
        pytest.skip(problem)


@pytest.fixture(scope="session")
def postgres():
    """One throw-away PostgreSQL cluster for the session."""
    _require(None if postgres_bin() else "Debian's PostgreSQL is not installed (apt-get install postgresql)")
    pg = Postgres()
    try:
        yield pg.start()
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """compose.yaml's MLflow server (basic-auth, PostgreSQL, served artifacts), once a session."""
    server = MlflowServer(postgres, tmp_path_factory.mktemp("mlflow-server"))
    # the test process reads the server as the sweep does: credentials by environment, never in a URI
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    try:
        server.start()
        os.environ.update({k: server.client_env()[k] for k in saved})
        yield server
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        server.stop()
