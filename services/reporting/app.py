"""Reporting's wiring root."""

from __future__ import annotations

from prodigy_users.runtime.service import Runtime, ServiceSpec

from .activity import api as activity_api
from .activity.service import ActivityLog
from .consumers import BATCH, BATCH_TYPES, HANDLERS
from .container import Reporting
from .errors import PROBLEMS
from .me import api as me_api
from .record import api as record_api
from .record.service import Records
from .replay import follow_rebuilds
from .settings import Settings
from .users import api as users_api
from .users.service import UsersTable


def container(runtime: Runtime) -> Reporting:
    """Reporting's use cases on the runtime's engine."""
    return Reporting(
        users=UsersTable(runtime.engine),
        records=Records(runtime.engine),
        activity=ActivityLog(runtime.engine),
    )


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Reporting as a ServiceSpec for ``runtime.service.build_app``."""
    return ServiceSpec(
        name="reporting",
        settings=settings or Settings(),
        title="Prodigy reporting",
        description="Read models: each department's users table and individual records.",
        # The users table first: its /users/export must not be read as /users/{account}.
        routers=[users_api.router, record_api.router, me_api.router, activity_api.router],
        problems=PROBLEMS,
        handlers=HANDLERS,
        batch_handler=BATCH,
        batch_types=BATCH_TYPES,
        container=container,
        background=[follow_rebuilds],
    )
