"""Membership's settings."""

from __future__ import annotations

from pathlib import Path

from prodigy_users.runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """``PRODIGY_*`` environment variables for membership."""

    service_name: str = "membership"
    http_port: int = 8102
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/membership"
    # How long an add-member request waits for identity before answering 202.
    sync_wait_s: float = 2.0
    # Invitations lapse after this long unless the department sets its own.
    invitation_ttl_s: int = 14 * 24 * 3600
    invitation_sweep_interval_s: float = 30.0
    reminder_interval_s: int = 3600
    max_invitations_per_request: int = 500
    # Base of the links people open (the console's pages); tokens are appended.
    app_base_url: str = "http://127.0.0.1:8100"
    # Secret that derives invitation and registration-link tokens: the database
    # keeps only their hashes, yet a reminder can resend the same link.
    link_secret_path: Path | None = None
    seal_public_key_path: Path | None = None
    # Identity's sealing key (public half): a registration's password hash travels
    # sealed to it.
    identity_seal_public_key_path: Path | None = None
    # Bulk uploads: the limits a file must keep, and how the worker cuts the work:
    # rows classified per transaction, and addresses per CreateAccounts batch.
    import_max_bytes: int = 10 * 1024 * 1024
    import_max_rows: int = 50_000
    import_chunk_rows: int = 1000
    import_batch_size: int = 250
    import_poll_interval_s: float = 1.0
    # An upload is read in a child process with at most this much address space and
    # this long (imports/parsing.py); a file that needs more is refused (422).
    import_read_memory_mb: int = 512
    import_read_timeout_s: float = 120.0
