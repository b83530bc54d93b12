"""Safe access to the Ray dashboard: a warning for a network-facing bind, and how to log in.

A Ray dashboard that others can reach lets them run code on every node, so a bind address
other than loopback is warned about. Ray 2.60 starts local clusters with token authentication
(`ray.init` sets RAY_AUTH_MODE=token and writes a token to ~/.ray/auth_token when none is
found); the dashboard page then asks for that token, so the sweep says where it is. Ray reads
the token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token
(docs.ray.io, "Token Authentication", token sources and precedence); `ray.init` writes that
file with the default umask, often world-readable, so it is made private here.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import stat
from pathlib import Path

_logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public interface


def check_dashboard_host(host: str) -> None:
    """Warn when the dashboard would listen beyond this machine."""
    if not is_loopback(host):
        _logger.warning("--dashboard-host %s: the Ray dashboard listens beyond this machine, and anyone who "
                        "reaches it can run code on it; keep 127.0.0.1 and use an SSH tunnel "
                        "(ssh -L 8265:127.0.0.1:8265 host), or put a firewall and an authenticating proxy in front",
                        host)


def token_auth_enabled() -> bool:
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return True
    try:  # Ray's own answer, where this Ray has one (2.52 and later)
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:
        return False
    return bool(is_token_auth_enabled())


def token_file() -> Path | None:
    """The file Ray reads its token from, or None when RAY_AUTH_TOKEN gives it directly."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return None
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()


def make_private(path: Path) -> None:
    """Owner read/write only: the token lets its holder run code on the cluster."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
            _logger.warning("made the Ray token file %s readable by its owner only (it was %o)", path, mode)
    except OSError as exc:
        _logger.warning("could not make the Ray token file %s private (%s): chmod 600 it", path, exc)


def access_hint(dashboard_url: str) -> str:
    """What to print under the dashboard URL; with token authentication, where the token is."""
    lines = [f"Ray dashboard: http://{dashboard_url}"]
    if not token_auth_enabled():
        return lines[0]
    path = token_file()
    if path is None:
        where = "the value of $RAY_AUTH_TOKEN"
    else:
        where = f"the contents of {path}"
        if path.is_file():
            make_private(path)
    lines.append(f"  token authentication is on: when the page asks for a token, paste {where} "
                 "(`ray get-auth-token` prints it); the browser keeps it as a cookie. "
                 "Scripts send it as the header `Authorization: Bearer <token>`.")
    return "\n".join(lines)
