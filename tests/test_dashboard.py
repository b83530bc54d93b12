"""The Ray dashboard's safety notes, without starting Ray: a network-facing bind is warned about,
and with token authentication on the sweep says where the token is and makes its file private."""
from __future__ import annotations

import logging
import stat

import pytest

from orchestrator import dashboard
from orchestrator.sweep import parse_args

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("gpu-host", False),
])
def test_is_loopback(host, loopback):
    assert dashboard.is_loopback(host) is loopback


@pytest.mark.parametrize("argv, warned", [
    (["s.yaml", "--dashboard-host", "0.0.0.0"], True),
    (["s.yaml"], False),
    (["s.yaml", "--dashboard-host", "0.0.0.0", "--no-dashboard"], False),
    (["s.yaml", "--dashboard-host", "0.0.0.0", "--dry-run"], False),
])
def test_a_network_facing_dashboard_is_warned_about(caplog, argv, warned):
    with caplog.at_level(logging.WARNING, logger="orchestrator.dashboard"):
        parse_args(argv)
    assert any("anyone who reaches it can run code" in r.getMessage() for r in caplog.records) is warned


@pytest.fixture
def ray_env(tmp_path, monkeypatch):
    """A home folder of our own and token mode on, no token in the environment."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_the_default_token_file_is_named_and_made_private(ray_env):
    path = ray_env / ".ray" / "auth_token"
    path.parent.mkdir()
    path.write_text(TOKEN)
    path.chmod(0o644)  # what `ray.init` leaves under a usual umask
    hint = dashboard.access_hint("127.0.0.1:8265")
    assert hint.startswith("Ray dashboard: http://127.0.0.1:8265\n")
    assert str(path) in hint and "ray get-auth-token" in hint
    assert TOKEN not in hint, "the token itself never goes to the log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_token_path_from_the_environment_is_named(ray_env, monkeypatch):
    path = ray_env / "secrets" / "ray-token"
    path.parent.mkdir()
    path.write_text(TOKEN)
    path.chmod(0o640)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    assert str(path) in dashboard.access_hint("127.0.0.1:8265")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_token_in_the_environment_is_named_not_printed(ray_env, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    hint = dashboard.access_hint("127.0.0.1:8265")
    assert "$RAY_AUTH_TOKEN" in hint and TOKEN not in hint


def test_without_token_authentication_only_the_url(monkeypatch):
    monkeypatch.setattr(dashboard, "token_auth_enabled", lambda: False)
    assert dashboard.access_hint("127.0.0.1:8265") == "Ray dashboard: http://127.0.0.1:8265"
