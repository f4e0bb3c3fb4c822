"""Membership's wiring root."""

from __future__ import annotations

from prodigy_users.runtime.service import Runtime, ServiceSpec

from .api import router
from .consumers import handlers
from .service import Membership
from .settings import Settings


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Membership as a ServiceSpec for ``runtime.service.build_app``."""
    settings = settings or Settings()
    membership = Membership(settings)

    async def bind(runtime: Runtime) -> None:
        membership.engine = runtime.engine
        runtime.state["membership"] = membership

    return ServiceSpec(
        name="membership",
        settings=settings,
        title="Prodigy membership",
        description="Departments, their members and roles, and the requests that add people.",
        routers=[router],
        handlers=handlers(membership),
        startup=[bind],
    )
