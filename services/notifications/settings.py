"""Notifications' settings (``PRODIGY_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from prodigy_users.runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """Where mail goes, how it is retried, and the key that opens sealed tokens."""

    service_name: str = "notifications"
    http_port: int = 8103
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/notifications"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    mail_from: str = "Prodigy <no-reply@prodigy.local>"

    seal_private_key_path: Path | None = Field(
        default=None, description="Private key that opens the tokens identity seals for us."
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8100",
        description="Base of set-password and reset links in emails (the console serves the "
        "page).",
    )
    app_base_url: str = Field(
        default="http://127.0.0.1:8100",
        description="Base of invitation links (`{base}/invitations/{token}`) and sign-in links "
        "(the console's pages).",
    )
    # A new email whose department we have not heard of yet waits this long for
    # its name (``DepartmentCreated`` travels on another topic), then goes anyway.
    department_name_wait_s: float = Field(default=10.0, ge=0)

    # Reused sessions: a relay that drops idle ones is not asked to carry a message
    # on one older than this; after this many messages a session is renewed.
    smtp_idle_s: float = Field(default=10.0, gt=0)
    smtp_messages_per_connection: int = Field(default=100, ge=1)
    # A sender takes up to this many waiting emails and pipelines them on its session
    # (RFC 2920, if the relay offers it); the whole run has ``smtp_timeout_s``.
    smtp_run_size: int = Field(default=10, ge=1)

    # Retries: after the n-th failed attempt wait base * 2**(n-1), at most max; the
    # defaults ride out a relay outage of about 17 minutes. A permanent refusal
    # (a 5xx to the recipient or the content) fails the email at once.
    send_max_attempts: int = Field(default=10, ge=1)
    send_backoff_base_s: float = Field(default=2.0, gt=0)
    send_backoff_max_s: float = Field(default=600.0, gt=0)
    # While the relay fails every email, it is asked this often whether it answers
    # again (a session opened and closed, nothing sent); once it does, the emails
    # waiting out their backoff are due at once instead of up to the backoff later.
    send_relay_probe_s: float = Field(default=5.0, gt=0)
    send_concurrency: int = Field(
        default=16, ge=1, description="SMTP sessions in use at once (each sends a run)."
    )
    send_batch_size: int = Field(
        default=300, ge=1, description="Emails claimed at most at a time (and held locally)."
    )
    # A replica that claims an email owns it this long; if it dies mid-send, another
    # replica takes the email over once the lease has run out.
    send_lease_s: float = Field(default=120.0, gt=0)
    # A worker that died (its process is gone: PostgreSQL dropped its session lock)
    # has its leases taken over at once. Only when the database itself restarted
    # (every lock gone at once) do the leases taken before wait this long, for their
    # holders to reconnect and record what the relay had already accepted.
    send_takeover_grace_s: float = Field(default=15.0, ge=0)
    # New emails wake the worker through LISTEN/NOTIFY; this is only the fallback.
    delivery_poll_interval_s: float = Field(default=1.0, gt=0)
