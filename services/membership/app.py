"""Membership's wiring root: its features, their use cases, handlers and workers."""

from __future__ import annotations

from prodigy_users.runtime.service import Runtime, ServiceSpec

from .consumers import IGNORED, handlers
from .container import UseCases, build_use_cases
from .departments.api import router as departments_router
from .errors import PROBLEMS
from .groups.api import router as groups_router
from .imports.answers import ImportAnswers
from .imports.api import router as imports_router
from .imports.wakeup import Wakeup
from .invitations.api import router as invitations_router
from .invitations.registrations import Registrations
from .invitations.tokens import LinkTokens
from .members.api import router as members_router
from .members.requests import IdentityAnswers
from .members.service import completions
from .members.waiters import Waiters
from .settings import Settings


def identity_answers(settings: Settings, waiters: Waiters) -> IdentityAnswers:
    """The handlers of identity's answers, as the consumer of one process applies them
    (registrations are finished by the invitations feature, which knows the links)."""
    tokens = LinkTokens(
        settings.link_secret_path, settings.seal_public_key_path, settings.app_base_url
    )
    return IdentityAnswers(waiters, completions(Registrations(tokens)))

# The POSTs that create something on behalf of a signed-in admin or operator: a retry
# with the same Idempotency-Key is answered what the first attempt was. (Accepting an
# invitation and joining through a link are not among them: the person the link is
# for acts there, and a repeat is answered `already-member`.)
IDEMPOTENT = frozenset(
    {"create_department", "add_member", "invite", "create_import", "create_group"}
)


# The one route that takes more than the app-wide body limit: a bulk upload. The route
# answers 413 `file-too-large` itself for a file over ``import_max_bytes``; this larger
# bound only stops a body streamed without a length before it fills a disk.
IMPORT_PATH = r"/v1/departments/[^/]+/imports"
IMPORT_BODY_MARGIN = 1024 * 1024


def spec(settings: Settings | None = None) -> ServiceSpec:
    """Membership as a ServiceSpec for ``runtime.service.build_app``."""
    settings = settings or Settings()
    # Shared by the consumer's answers and the use cases of this process: an answer
    # wakes the request waiting for it, and the import worker, at once.
    waiters = Waiters()
    wakeup = Wakeup()

    def container(runtime: Runtime) -> UseCases:
        return build_use_cases(runtime.engine, settings, waiters, wakeup)

    async def sweep_invitations(runtime: Runtime) -> None:
        await runtime.use_cases(UseCases).invitations.sweep_forever()

    async def run_imports(runtime: Runtime) -> None:
        await runtime.use_cases(UseCases).import_worker.run_forever()

    async def hear_operations(runtime: Runtime) -> None:
        await waiters.listen(runtime.engine)

    return ServiceSpec(
        name="membership",
        settings=settings,
        title="Prodigy membership",
        description="Departments, their members and roles, and the requests that add people.",
        routers=[
            departments_router,
            members_router,
            invitations_router,
            groups_router,
            imports_router,
        ],
        problems=PROBLEMS,
        handlers=handlers(identity_answers(settings, waiters), ImportAnswers(wakeup)),
        ignored=IGNORED,
        container=container,
        idempotent=IDEMPOTENT,
        throttled=True,
        body_limits=[(IMPORT_PATH, settings.import_max_bytes + IMPORT_BODY_MARGIN)],
        background=[sweep_invitations, run_imports, hear_operations],
    )
