"""Membership's wiring root."""

from __future__ import annotations

from prodigy_users.runtime.service import Runtime, ServiceSpec

from .api import router
from .api_groups import router as groups_router
from .api_imports import router as imports_router
from .api_invitations import router as invitations_router
from .consumers import IGNORED, handlers
from .groups import Groups
from .import_answers import ImportAnswers, Wakeup
from .import_worker import ImportWorker
from .importing import Imports
from .invitations import Invitations
from .lifecycle import Lifecycle
from .service import Membership
from .settings import Settings


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Membership as a ServiceSpec for ``runtime.service.build_app``."""
    settings = settings or Settings()
    membership = Membership(settings)
    # Bulk imports: answers (consumer) and uploads wake the worker instead of its poll.
    wakeup = Wakeup()

    async def bind(runtime: Runtime) -> None:
        membership.engine = runtime.engine
        runtime.state["membership"] = membership
        runtime.state["invitations"] = Invitations(membership)
        runtime.state["lifecycle"] = Lifecycle(membership)
        runtime.state["groups"] = Groups(membership)
        runtime.state["imports"] = Imports(membership, wakeup)
        runtime.state["import_worker"] = ImportWorker(
            membership,
            runtime.state["invitations"],
            runtime.state["lifecycle"],
            runtime.state["groups"],
            wakeup,
        )

    async def sweep_invitations(runtime: Runtime) -> None:
        await runtime.state["invitations"].sweep_forever()

    async def run_imports(runtime: Runtime) -> None:
        await runtime.state["import_worker"].run_forever()

    return ServiceSpec(
        name="membership",
        settings=settings,
        title="Prodigy membership",
        description="Departments, their members and roles, and the requests that add people.",
        routers=[router, invitations_router, groups_router, imports_router],
        handlers=handlers(membership, ImportAnswers(wakeup)),
        ignored=IGNORED,
        startup=[bind],
        background=[sweep_invitations, run_imports],
    )
