"""The agents of an activity: the person, the software stack and the host."""

from __future__ import annotations

import getpass
import os
import platform
import re
import socket
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata

__all__ = ["AgentRecord", "current_agents", "current_user", "software_versions"]

#: Packages whose versions can change a result, recorded as software agents.
SOFTWARE = ("ctanb", "gammapy", "astropy", "numpy", "scipy", "iminuit", "regions")


@dataclass(frozen=True)
class AgentRecord:
    """One agent: ``kind`` is ``person``, ``software`` or ``host``."""

    id: str
    kind: str
    name: str
    version: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "version": self.version}


def current_user() -> str:
    """The person running the code: ``JUPYTERHUB_USER`` on a hub, else the login name."""
    user = os.environ.get("JUPYTERHUB_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers: fall back to the uid
        return f"uid{os.getuid()}"


@cache
def software_versions() -> dict[str, str]:
    """Versions of :data:`SOFTWARE` and Python (cached per process); ctanb run from a
    source checkout also names its git revision (``0.1.0+g1a2b3c4``, ``.dirty`` when
    the checkout has uncommitted changes), so two runs of different code differ."""
    versions: dict[str, str] = {}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    revision = source_revision()
    if revision:
        versions["ctanb"] = f"{versions['ctanb']}+g{revision}"
    versions["python"] = platform.python_version()
    return versions


@cache
def source_revision() -> str | None:
    """The git revision of the ctanb checkout this code runs from (None when installed
    from a package or git is missing)."""
    import subprocess

    from .._settings import project_root

    root = project_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "ctanb",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}.dirty" if dirty else head


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "_"


@cache
def _host() -> str:
    return socket.gethostname() or platform.node() or "unknown-host"


def current_agents() -> list[AgentRecord]:
    """The agents associated with an activity started now in this process."""
    user = current_user()
    agents = [AgentRecord(f"ctanb:agent-person-{_safe(user)}", "person", user)]
    for name, version in software_versions().items():
        agents.append(
            AgentRecord(f"ctanb:agent-software-{name}-{_safe(version)}", "software", name, version)
        )
    host = _host()
    agents.append(AgentRecord(f"ctanb:agent-host-{_safe(host)}", "host", host, sys.platform))
    return agents
