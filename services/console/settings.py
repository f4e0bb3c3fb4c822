"""The console's settings (``PRODIGY_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from prodigy_users.runtime.settings import HttpSettings


class Settings(HttpSettings):
    """Where the console listens, where the four services are, how its cookies are set.
    From its trusted proxies it reads the person's address, and passes it on to the
    services, which throttle sign-in and the links per address."""

    service_name: str = "console"
    http_port: int = 8100

    identity_url: str = Field(
        default="http://127.0.0.1:8101", description="Base URL of identity's HTTP API."
    )
    membership_url: str = Field(
        default="http://127.0.0.1:8102", description="Base URL of membership's HTTP API."
    )
    notifications_url: str = Field(
        default="http://127.0.0.1:8103", description="Base URL of notifications' HTTP API."
    )
    reporting_url: str = Field(
        default="http://127.0.0.1:8104", description="Base URL of reporting's HTTP API."
    )
    service_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a call to a service may take before its page says the "
        "service is not answering.",
    )

    secret_key_path: Path | None = Field(
        default=None,
        description="File with the secret that signs CSRF tokens (shared by every replica). "
        "Unset: a random secret per process (one replica only; forms die with a restart).",
    )
    cookie_secure: bool = Field(
        default=False,
        description="Mark cookies Secure: set it whenever the console is served over HTTPS.",
    )
    csrf_max_age_s: int = Field(
        default=12 * 3600, gt=0, description="How long a form stays valid after it was shown."
    )
    upload_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest file the bulk upload page takes (bytes): keep it the same as "
        "membership's PRODIGY_IMPORT_MAX_BYTES, so a person hears it from the console "
        "before the file travels further.",
    )

    @field_validator("identity_url", "membership_url", "notifications_url", "reporting_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
