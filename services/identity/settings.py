"""Identity's settings."""

from __future__ import annotations

from pathlib import Path

from prodigy_users.runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """``PRODIGY_*`` environment variables for identity."""

    service_name: str = "identity"
    http_port: int = 8101
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/identity"
    signing_key_path: Path | None = None
    seal_public_key_path: Path | None = None
    # Identity's own sealing key: opens the password hashes of registrations, which
    # membership seals to its public half (identity-seal.pub.pem).
    identity_seal_private_key_path: Path | None = None
    # Where the links in emails land: the console, whose pages open them.
    public_base_url: str = "http://127.0.0.1:8100"
    access_token_ttl_s: int = 3600
    welcome_link_ttl_s: int = 7 * 24 * 3600
    reset_link_ttl_s: int = 3600
    operator_link_ttl_s: int = 24 * 3600
    # A registration's confirmation link works this long; an account nobody confirmed
    # in that time is deleted by the sweep, which runs every interval.
    email_confirmation_ttl_s: int = 24 * 3600
    unconfirmed_sweep_interval_s: float = 600.0
    # The link sent to a new login email works this long.
    email_change_ttl_s: int = 24 * 3600
