"""The typed container of membership's use cases (built by ``app.py``, handed to routes
by ``deps.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from .departments.service import Departments
from .groups.service import Groups
from .imports.parsing import MB, UploadReader
from .imports.service import Imports
from .imports.wakeup import Wakeup
from .imports.worker import ImportWorker
from .invitations.entry import Entry
from .invitations.links import RegistrationLinks
from .invitations.service import Invitations
from .invitations.tokens import LinkTokens
from .members.accounts import AccountNames
from .members.lifecycle import Lifecycle
from .members.passwords import PasswordSeal
from .members.requests import Operations
from .members.service import Members
from .members.waiters import Waiters
from .settings import Settings


@dataclass(frozen=True)
class UseCases:
    """Every use case of one membership process."""

    departments: Departments
    members: Members
    lifecycle: Lifecycle
    names: AccountNames
    operations: Operations
    invitations: Invitations
    links: RegistrationLinks
    entry: Entry
    groups: Groups
    imports: Imports
    import_worker: ImportWorker


def build_use_cases(
    engine: AsyncEngine, settings: Settings, waiters: Waiters, wakeup: Wakeup
) -> UseCases:
    """Every use case of a process, on ``engine``; ``waiters`` and ``wakeup`` are shared
    with the consumer's handlers, whose answers wake requests and the import worker."""
    tokens = LinkTokens(
        settings.link_secret_path, settings.seal_public_key_path, settings.app_base_url
    )
    operations = Operations(engine, waiters, settings.sync_wait_s)
    lifecycle = Lifecycle(engine)
    groups = Groups(engine)
    invitations = Invitations(engine, settings, tokens)
    return UseCases(
        departments=Departments(engine, operations, settings.invitation_ttl_s),
        members=Members(engine, operations),
        lifecycle=lifecycle,
        names=AccountNames(engine),
        operations=operations,
        invitations=invitations,
        links=RegistrationLinks(engine, tokens),
        entry=Entry(engine, PasswordSeal(settings.identity_seal_public_key_path)),
        groups=groups,
        imports=Imports(
            engine,
            settings,
            wakeup,
            UploadReader(
                memory_bytes=settings.import_read_memory_mb * MB,
                timeout_s=settings.import_read_timeout_s,
            ),
        ),
        import_worker=ImportWorker(engine, settings, invitations, lifecycle, groups, wakeup),
    )
