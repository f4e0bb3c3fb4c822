"""Notifications' wiring root."""

from __future__ import annotations

from prodigy_users.runtime.service import ServiceSpec

from .api import router
from .consumers import BATCH_TYPES, IGNORED, batch_handler, handlers
from .delivery import deliver
from .settings import Settings


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Notifications as a ServiceSpec for ``runtime.service.build_app``."""
    settings = settings or Settings()
    return ServiceSpec(
        name="notifications",
        settings=settings,
        title="Prodigy notifications",
        description="Every email the system sends: templates, delivery with retries, the log.",
        routers=[router],
        handlers=handlers(settings),
        batch_handler=batch_handler(settings),
        batch_types=BATCH_TYPES,
        ignored=IGNORED,
        background=[deliver],
    )
