"""Reporting's wiring root."""

from __future__ import annotations

from prodigy_users.runtime.service import ServiceSpec

from . import api, api_record
from .consumers import BATCH, BATCH_TYPES, HANDLERS
from .replay import follow_rebuilds
from .settings import Settings


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Reporting as a ServiceSpec for ``runtime.service.build_app``."""
    return ServiceSpec(
        name="reporting",
        settings=settings or Settings(),
        title="Prodigy reporting",
        description="Read models: each department's users table and individual records.",
        routers=[api.router, api_record.router],
        handlers=HANDLERS,
        batch_handler=BATCH,
        batch_types=BATCH_TYPES,
        background=[follow_rebuilds],
    )
