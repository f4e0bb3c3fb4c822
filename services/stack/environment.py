"""A service's settings for a command run beside it (``replay``, ``dlq``): from the
environment like the service's own (``PRODIGY_DATABASE_URL``, ...: a Kubernetes Job
runs it with the service's environment), or, when ``PRODIGY_DATABASE_URL`` is not
set, from the embedded stack's ``<data-dir>/env/<service>.env`` (written by ``up``).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


class NoSettings(Exception):
    """Neither the environment nor the data directory says where the service is."""


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of an env file (values shell-quoted as ``up`` writes them)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, raw = line.partition("=")
            parsed = shlex.split(raw)
            values[key.strip()] = parsed[0] if parsed else ""
    return values


def use_service_environment(service: str, data_dir: Path) -> None:
    """Make ``service``'s settings this process's environment (see the module docstring)."""
    if "PRODIGY_DATABASE_URL" in os.environ:
        return
    env = data_dir / "env" / f"{service}.env"
    if not env.exists():
        raise NoSettings(
            f"PRODIGY_DATABASE_URL is not set and {env} does not exist "
            "(start the stack with `prodigy-users up`, or pass --data-dir)"
        )
    os.environ.update(read_env_file(env))
