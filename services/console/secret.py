"""The console's one secret: the key its forms' CSRF tokens are signed with.

Every replica must read the same file (a Secret in Kubernetes, the data dir in
the embedded stack), so a form shown by one replica is accepted by another and
survives a restart.
"""

from __future__ import annotations

import secrets
from pathlib import Path

SECRET_FILE = "console.key"  # noqa: S105 - a file name, not a secret
MIN_BYTES = 32


def ensure_secret(path: Path) -> Path:
    """Write a new random secret to ``path`` unless one is there; the path."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48) + "\n")
        path.chmod(0o600)
    return path


def load_secret(path: Path | None) -> bytes:
    """The secret in ``path``, or a random one for this process when there is no file."""
    if path is None:
        return secrets.token_bytes(MIN_BYTES)
    secret = path.read_bytes().strip()
    if len(secret) < MIN_BYTES:
        raise ValueError(f"{path}: the console's secret needs at least {MIN_BYTES} bytes")
    return secret
