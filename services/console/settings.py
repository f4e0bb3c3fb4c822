"""The console's settings (``PRODIGY_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prodigy_users.runtime.throttle_rules import IPNetwork, trusted_networks


class Settings(BaseSettings):
    """Where the console listens, where the four services are, how its cookies are set."""

    model_config = SettingsConfigDict(env_prefix="PRODIGY_", extra="ignore")

    service_name: str = "console"
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    log_level: str = "INFO"
    log_json: bool = True

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
    max_body_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest request body a form may send (bytes); larger ones are answered "
        "413. A page that takes a file has its own, larger limit.",
    )
    upload_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest file the bulk upload page takes (bytes): keep it the same as "
        "membership's PRODIGY_IMPORT_MAX_BYTES, so a person hears it from the console "
        "before the file travels further.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Addresses or networks (comma-separated) of the proxies in front of the "
        "console (the ingress controller): from them, the person's address is read from "
        "X-Forwarded-For. The console passes that address on to the services, which throttle "
        "sign-in and the links per address.",
    )

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        trusted_networks(value)  # refused at start, not at the first sign-in
        return value

    @property
    def trusted_networks(self) -> tuple[IPNetwork, ...]:
        """``trusted_proxies`` parsed."""
        return trusted_networks(self.trusted_proxies)

    @field_validator("identity_url", "membership_url", "notifications_url", "reporting_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
