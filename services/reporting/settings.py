"""Reporting's settings (``PRODIGY_*`` environment variables)."""

from __future__ import annotations

from prodigy_users.runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """Reporting needs nothing beyond the shared settings yet."""

    service_name: str = "reporting"
    http_port: int = 8104
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:15432/reporting"
