"""The Docker deployment files, checked without Docker (no engine on CI): the compose file
parses and binds every published port to 127.0.0.1 by default, runs the services the README
describes, and the image installs the same torch pin as the README's install command."""
from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SERVICES = ("postgres", "mlflow", "ray-head", "ray-worker")

_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")
# The variables compose.yaml requires (`${X:?message}`), as a user exports them.
REQUIRED = {"POSTGRES_PASSWORD": "pg-test-secret-5f3a", "RAY_AUTH_TOKEN": "ray-test-token-9c1e",
            "MLFLOW_ADMIN_PASSWORD": "mlflow-test-admin-2b7d", "MLFLOW_SECRET_KEY": "mlflow-test-key-81c0"}


def resolve(value, env: dict[str, str] | None = None):
    """Compose interpolation as `docker compose` does it with only `env` set (default: REQUIRED):
    `${X:-default}` / `${X-default}` become the default; `${X:?message}` must be in `env`;
    `${X}` without a default is an error here."""
    env = REQUIRED if env is None else env
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name, op, default = m.groups()
        if name in env:
            return env[name]
        if op == "?":
            raise AssertionError(f"docker compose refuses to start without {name}: {default}")
        if default is None:
            raise AssertionError(f"${{{name}}} has no default in docker/compose.yaml")
        return default

    return _VAR.sub(sub, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(raw) -> dict:
    return resolve(raw["services"])


def command(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def option(cmd: list[str], name: str) -> str:
    assert name in cmd, f"{name} missing from {cmd}"
    return cmd[cmd.index(name) + 1]


def published(service: dict) -> list[tuple[str, str, str]]:
    """(host_ip, host_port, container_port) of every published port, short or long syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((str(port.get("host_ip", "")), str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")  # [IP:][HOST_PORT:]CONTAINER_PORT
        parts = [""] * (3 - len(parts)) + parts     # no IP: binds every interface
        out.append(tuple(parts))
    return out


def test_compose_parses_and_has_the_services(raw, services):
    assert isinstance(raw, dict) and set(SERVICES) <= set(services), sorted(services)
    for name in ("mlflow", "ray-head", "ray-worker"):
        assert services[name]["image"] == services["ray-head"]["image"], "one project image for all nodes"


def test_every_published_port_binds_to_localhost_by_default(services):
    ports = {name: published(s) for name, s in services.items()}
    assert any(ports.values())
    for name, entries in ports.items():
        for ip, host_port, target in entries:
            assert ip == "127.0.0.1", f"{name} publishes {target} on {ip or 'every interface'}"
    assert {t for _, _, t in ports["ray-head"]} == {"8265"}, "the Ray client port (10001) runs code for anyone"
    assert {t for _, _, t in ports["mlflow"]} == {"5000"}
    assert ports["postgres"] == [] and ports["ray-worker"] == []
    for name, s in services.items():
        assert s.get("network_mode") != "host", f"{name} would bypass the port bindings"


def test_bind_addr_is_the_one_knob(raw):
    """Every published port goes through ${BIND_ADDR:-127.0.0.1}, so one variable moves them all."""
    for name, s in raw["services"].items():
        for port in s.get("ports", []):
            assert str(port).startswith("${BIND_ADDR:-127.0.0.1}:"), f"{name}: {port}"
    moved = resolve(raw["services"], {**REQUIRED, "BIND_ADDR": "10.0.0.5"})
    assert {ip for s in moved.values() for ip, _, _ in published(s)} == {"10.0.0.5"}


def test_ray_head_and_worker(services):
    head, worker = command(services["ray-head"]), command(services["ray-worker"])
    assert head[:3] == ["ray", "start", "--head"] and "--block" in head
    assert option(head, "--port") == "6379" and option(head, "--dashboard-host") == "0.0.0.0"
    assert worker[:2] == ["ray", "start"] and option(worker, "--address") == "ray-head:6379" and "--block" in worker
    for name in ("ray-head", "ray-worker"):
        s = services[name]
        env = s["environment"]
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000" and env["EMOCAL_DATA"] == "/data"
        mounts = {v.split(":")[1]: v for v in s["volumes"]}
        assert mounts["/data"].endswith(":ro"), "data is mounted read-only"
        assert mounts["/app/runs"].split(":")[0] == "runs", "run outputs (stage store) on a shared volume"
        assert s["shm_size"], "Ray's object store needs a large /dev/shm"
    assert services["ray-head"]["volumes"] == services["ray-worker"]["volumes"]


def test_worker_reserves_an_nvidia_gpu(services):
    deploy = services["ray-worker"]["deploy"]
    assert int(deploy["replicas"]) >= 1
    devices = deploy["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_mlflow_is_backed_by_postgres_and_accepts_the_nodes(services):
    cmd = command(services["mlflow"])
    assert cmd[:2] == ["mlflow", "server"]
    env = services["mlflow"]["environment"]
    backend = env["MLFLOW_BACKEND_STORE_URI"]  # read by `mlflow server` as --backend-store-uri
    # SQLAlchemy 2.1 reads postgresql:// as psycopg 3's; the driver is named, and installed (.[server])
    assert backend.startswith("postgresql+psycopg://") and "@postgres:5432/" in backend
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16") and pg["healthcheck"]["test"]
    assert backend.endswith("/" + pg["environment"]["POSTGRES_DB"])
    assert f"://{pg['environment']['POSTGRES_USER']}@" in backend, "user only: libpq reads the password from PGPASSWORD"
    assert env["PGPASSWORD"] == pg["environment"]["POSTGRES_PASSWORD"] == REQUIRED["POSTGRES_PASSWORD"]
    assert "--serve-artifacts" in cmd and option(cmd, "--artifacts-destination")
    assert option(cmd, "--host") == "0.0.0.0" and option(cmd, "--port") == "5000"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # MLflow 3 refuses requests whose Host header is not allowed (mlflow.server.security_utils
    # matches with fnmatch); the nodes send "mlflow:5000", a browser on the host "127.0.0.1:5000".
    allowed = option(cmd, "--allowed-hosts").split(",")
    for host in ("mlflow:5000", "127.0.0.1:5000", "localhost:5000"):
        assert any(fnmatch.fnmatch(host, a) if "*" in a else host == a for a in allowed), host
    assert "*" not in allowed


def test_postgres_password_is_required(raw):
    """No default password: compose refuses to start until POSTGRES_PASSWORD is set."""
    assert raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert raw["services"]["mlflow"]["environment"]["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    with pytest.raises(AssertionError, match="without POSTGRES_PASSWORD: set POSTGRES_PASSWORD"):
        resolve(raw["services"], {"RAY_AUTH_TOKEN": "t"})


def test_mlflow_asks_for_credentials_from_the_environment(raw, services):
    """The basic-auth app; the admin's password and the app's secret only from required variables;
    only the driver's node (ray-head) has the credentials. tests/test_tracking_server.py runs it."""
    mlflow = services["mlflow"]
    assert option(command(mlflow), "--app-name") == "basic-auth"
    env = raw["services"]["mlflow"]["environment"]
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_SECRET_KEY:?")
    (config,) = mlflow["configs"]
    assert mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"] == config["target"]
    settings = raw["configs"][config["source"]]["content"]
    assert "admin_password" not in settings and "database_uri = sqlite:////app/mlauth/" in settings
    assert any(v.startswith("mlauth:/app/mlauth") for v in mlflow["volumes"])
    head, worker = services["ray-head"]["environment"], services["ray-worker"]["environment"]
    assert head["MLFLOW_TRACKING_PASSWORD"] == REQUIRED["MLFLOW_ADMIN_PASSWORD"] and head["MLFLOW_TRACKING_USERNAME"]
    assert not any(k.startswith("MLFLOW_TRACKING_USER") or k.startswith("MLFLOW_TRACKING_PASS") for k in worker)


def test_ray_is_pinned_to_a_release_with_token_authentication():
    """compose.yaml sets RAY_AUTH_MODE=token, which Ray ignores before 2.52."""
    pin = re.search(r'"ray\[[^\]]*\]>=(\d+)\.(\d+)', (ROOT / "pyproject.toml").read_text())
    assert pin and (int(pin[1]), int(pin[2])) >= (2, 52), pin


def test_no_secret_on_a_command_line(services):
    """Commands (and health checks) show in `ps` to every user of the host; secrets go by environment."""
    for name, s in services.items():
        argv = command(s) + [str(a) for a in (s.get("healthcheck") or {}).get("test", [])]
        for secret in REQUIRED.values():
            assert not any(secret in a for a in argv), f"{name} has a secret on its command line: {argv}"


# ---- Dockerfile ----------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    lines, buf = [], ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
        buf = ""
    return lines


def pip_installs(run: str) -> list[list[str]]:
    """The argument lists of every `pip install` in a RUN (or README) command line."""
    out = []
    for part in re.split(r"&&|;|\|\|", run):
        words = shlex.split(part)
        for i in range(len(words) - 1):
            if words[i].endswith("pip") and words[i + 1] == "install":
                out.append(words[i + 2:])
            elif words[i:i + 4] == ["python", "-m", "pip", "install"]:
                out.append(words[i + 4:])
    return out


def torch_pin(args: list[str]) -> str | None:
    return next((a for a in args if re.fullmatch(r"torch==\S+", a)), None)


def test_dockerfile_installs_the_readme_torch_pin_then_the_project():
    readme = (ROOT / "README.md").read_text()
    install = next(line for line in readme.splitlines() if "pip install torch==" in line and "-e" in line)
    readme_pins = [p for args in pip_installs(install) if (p := torch_pin(args))]
    assert len(readme_pins) == 1, install

    runs = [args for word, rest in dockerfile() if word == "RUN" for args in pip_installs(rest)]
    torch_steps = [i for i, args in enumerate(runs) if torch_pin(args)]
    project_steps = [i for i, args in enumerate(runs) if "." in args or ".[server]" in args]
    assert [torch_pin(runs[i]) for i in torch_steps] == readme_pins == ["torch==2.13.0"]
    assert project_steps, "the image installs the project (pip install .)"
    assert torch_steps[0] < project_steps[0], "torch first, as in the README, so pip keeps that build"
    for args in runs:
        assert "--no-cache-dir" in args, args


def test_dockerfile_copies_the_project_and_runs_as_non_root():
    steps = dockerfile()
    assert steps[0][0] in ("ARG", "FROM") and any(w == "FROM" for w, _ in steps)
    copied = {src.rstrip("/") for w, rest in steps if w == "COPY" for src in shlex.split(rest)[:-1]}
    assert {"pyproject.toml", "README.md", "orchestrator", "trainables", "specs"} <= copied
    for src in copied:
        assert (ROOT / src).exists(), src
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    for src in copied:  # the build context keeps what the image copies
        assert f"!{src}" in ignore or f"!{src}/" in ignore, src
    assert ("WORKDIR", "/app") in steps
    users = [rest.split(":")[0] for w, rest in steps if w == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert steps[-1][0] == "CMD" and "--help" in steps[-1][1]


def test_docker_readme_warns_and_shows_the_paper_run():
    text = (DOCKER / "README.md").read_text()
    assert "docker compose -f docker/compose.yaml up -d" in text
    assert "exec ray-head python -m orchestrator.sweep specs/full_paper.yaml --address auto" in text
    assert (ROOT / "specs" / "full_paper.yaml").is_file()
    assert "arbitrary code" in text and "BIND_ADDR=127.0.0.1" in text and "POSTGRES_PASSWORD" in text
