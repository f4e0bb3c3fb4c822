"""What the console knows of a person's departments: membership's list of them.

``GET /v1/me/memberships`` answers, for any signed-in account, the departments it
is a member of now, with their names and the person's role in each. Pages use it
for the department's name (on every page) and to offer only the pages a role can
use. It never stands for a permission: every page still makes its own calls, and
the services' answers decide.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from .clients import Ok, ServiceDown, Services

# ``none``: not a member (or no such department); ``unknown``: membership did not answer.
Standing = Literal["admin", "officer", "member", "none", "unknown"]
ROLES: tuple[Standing, ...] = ("admin", "officer", "member")


@dataclass(frozen=True)
class DepartmentView:
    """A department as a page shows it, with the signed-in person's standing there."""

    id: uuid.UUID
    name: str | None
    standing: Standing
    status: str = "active"

    @property
    def title(self) -> str:
        """Its name, or a stand-in when membership did not tell it."""
        return self.name or f"Department {str(self.id)[:8]}"

    @property
    def manages(self) -> bool:
        """Whether the users pages are worth offering (the services still decide)."""
        return self.standing in ("admin", "officer")

    @property
    def administers(self) -> bool:
        """Whether the pages that change people are worth offering (membership decides)."""
        return self.standing == "admin"


def _view(item: dict[str, Any]) -> DepartmentView | None:
    try:
        dept = uuid.UUID(str(item.get("department_id")))
    except ValueError:
        return None
    role = str(item.get("role"))
    standing: Standing = next((r for r in ROLES if r == role), "member")
    return DepartmentView(
        dept, str(item.get("department_name") or "") or None, standing, str(item.get("status"))
    )


async def memberships(services: Services, token: str) -> list[DepartmentView] | None:
    """The person's departments, by name (None: membership is not answering)."""
    try:
        result = await services.call("membership", "GET", "/v1/me/memberships", token=token)
    except ServiceDown:
        return None
    if not isinstance(result, Ok):
        return None
    items = result.json().get("items") or []
    return [v for item in items if isinstance(item, dict) and (v := _view(item)) is not None]


async def resolve(services: Services, token: str, dept: uuid.UUID) -> DepartmentView:
    """The department as the person sees it: its name and their standing."""
    mine = await memberships(services, token)
    if mine is None:
        return DepartmentView(dept, None, "unknown")
    return next((d for d in mine if d.id == dept), DepartmentView(dept, None, "none"))


async def department_name(services: Services, token: str, dept: uuid.UUID) -> str | None:
    """The department's name if the person is a member there, else None."""
    return (await resolve(services, token, dept)).name
