"""What the console knows of a department for a person: its name and their standing.

The services have no "my departments" call and only admins may read a
department's name (``GET /v1/departments/{dept}``); officers may read its
reports. So the console asks, in that order, and shows what it was told. It never
infers a permission: every page still makes its own calls, and the services'
answers decide.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from .clients import Ok, ServiceDown, Services

Standing = Literal["admin", "officer", "member", "unknown"]


@dataclass(frozen=True)
class DepartmentView:
    """A department as a page shows it."""

    id: uuid.UUID
    name: str | None
    standing: Standing

    @property
    def title(self) -> str:
        """Its name, or a stand-in when the person may not read it."""
        return self.name or f"Department {str(self.id)[:8]}"

    @property
    def manages(self) -> bool:
        """Whether the users pages are worth offering (the services still decide)."""
        return self.standing in ("admin", "officer")


async def department_name(services: Services, token: str, dept: uuid.UUID) -> str | None:
    """The department's name if the person may read it (admins), else None."""
    try:
        result = await services.call("membership", "GET", f"/v1/departments/{dept}", token=token)
    except ServiceDown:
        return None
    return str(result.json().get("name")) if isinstance(result, Ok) else None


async def resolve(services: Services, token: str, dept: uuid.UUID) -> DepartmentView:
    """The department's name and the person's standing, as far as the APIs tell."""
    try:
        result = await services.call("membership", "GET", f"/v1/departments/{dept}", token=token)
        if isinstance(result, Ok):
            return DepartmentView(dept, str(result.json().get("name")), "admin")
        if result.status == 404:
            return DepartmentView(dept, None, "unknown")
        reports = await services.call(
            "reporting",
            "GET",
            f"/v1/reports/departments/{dept}/users",
            token=token,
            params={"limit": "1"},
        )
    except ServiceDown:
        return DepartmentView(dept, None, "unknown")
    return DepartmentView(dept, None, "officer" if isinstance(reports, Ok) else "member")
