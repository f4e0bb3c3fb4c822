"""Membership's settings."""

from __future__ import annotations

from prodigy_users.runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """``PRODIGY_*`` environment variables for membership."""

    service_name: str = "membership"
    http_port: int = 8102
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/membership"
    # How long an add-member request waits for identity before answering 202.
    sync_wait_s: float = 2.0
