"""The typed container of membership's use cases (built by ``app.py``, handed to routes
by ``deps.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from .departments.service import Departments
from .groups.service import Groups
from .imports.service import Imports
from .imports.worker import ImportWorker
from .invitations.entry import Entry
from .invitations.links import RegistrationLinks
from .invitations.service import Invitations
from .members.lifecycle import Lifecycle
from .members.requests import Operations
from .members.service import Members


@dataclass(frozen=True)
class UseCases:
    """Every use case of one membership process."""

    departments: Departments
    members: Members
    lifecycle: Lifecycle
    operations: Operations
    invitations: Invitations
    links: RegistrationLinks
    entry: Entry
    groups: Groups
    imports: Imports
    import_worker: ImportWorker
