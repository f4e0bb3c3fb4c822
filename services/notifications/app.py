"""Notifications' wiring root."""

from __future__ import annotations

from prodigy_users.runtime.service import ServiceSpec

from .api import router
from .consumers import HANDLERS
from .delivery import deliver
from .settings import Settings


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Notifications as a ServiceSpec for ``runtime.service.build_app``."""
    return ServiceSpec(
        name="notifications",
        settings=settings or Settings(),
        title="Prodigy notifications",
        description="Every email the system sends: templates, delivery with retries, the log.",
        routers=[router],
        handlers=HANDLERS,
        background=[deliver],
    )
