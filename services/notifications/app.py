"""Notifications' wiring root."""

from __future__ import annotations

from prodigy_users.runtime.service import Runtime, ServiceSpec

from .api import router
from .consumers import BATCH_TYPES, IGNORED, batch_handler, handlers
from .container import Notifications
from .delivery import deliver
from .errors import PROBLEMS
from .service import EmailLog
from .settings import Settings


def container(runtime: Runtime) -> Notifications:
    """Notifications' use cases on the runtime's engine."""
    return Notifications(email_log=EmailLog(runtime.engine))


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Notifications as a ServiceSpec for ``runtime.service.build_app``."""
    settings = settings or Settings()
    return ServiceSpec(
        name="notifications",
        settings=settings,
        title="Prodigy notifications",
        description="Every email the system sends: templates, delivery with retries, the log.",
        routers=[router],
        problems=PROBLEMS,
        handlers=handlers(settings),
        batch_handler=batch_handler(settings),
        batch_types=BATCH_TYPES,
        ignored=IGNORED,
        container=container,
        background=[deliver],
    )
