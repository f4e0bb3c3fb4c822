"""The individual record as its page shows it: the profile, the history in sentences, the
training, and what an action changed. No I/O.

Reporting's record is a read model fed by events, so right after an admin changes
something it may still show the old value. Membership's answer to the change is the
truth: the profile shows that (``Profile.apply``), and the page says the rest of the
record catches up in a moment only when reporting's copy differs from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from .forms import FormErrors

ROLE_NAMES = {"admin": "Admin", "officer": "Officer", "member": "Member"}
# How the person came in (history's ``via``), as the end of a sentence.
VIA = {
    "admin_add": "added by an admin",
    "operator": "as the department's first admin",
    "invitation": "through an invitation",
    "registration_link": "through the department's registration link",
    "import": "in a bulk upload",
}


def role_name(role: str) -> str:
    """A role as people read it."""
    return ROLE_NAMES.get(role, role.capitalize())


def when(value: str | None) -> str:
    """An ISO time as "5 Dec 2026, 14:03 UTC" (the text of a ``<time>``)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def day(value: str | None) -> str:
    """An ISO date (or time) as "5 Dec 2026"."""
    if not value:
        return ""
    try:
        parsed = date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{parsed.day} {parsed:%b %Y}"


def number(value: Any) -> str:
    """Hours and credits without a needless ".0"."""
    try:
        figure = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{figure:g}"


@dataclass(frozen=True)
class Group:
    """A group of the department."""

    id: str
    name: str


@dataclass(frozen=True)
class Profile:
    """Who the person is in the department: what the record's top shows."""

    name: str
    email: str
    role: str
    status: str
    employee_id: str | None
    groups: tuple[Group, ...]

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Profile:
        """The profile in reporting's record."""
        groups = tuple(
            Group(str(g.get("group_id")), str(g.get("name")))
            for g in record.get("groups") or []
            if isinstance(g, Mapping)
        )
        return cls(
            name=str(record.get("name", "")),
            email=str(record.get("email", "")),
            role=str(record.get("role", "")),
            status=str(record.get("status", "")),
            employee_id=record.get("employee_id") or None,
            groups=groups,
        )

    def apply(self, member: Mapping[str, Any], names: Mapping[str, str]) -> Profile:
        """The profile as membership's answer ``member`` (a PATCH's) has it; its groups
        are ids, named from ``names`` (the department's groups) where known."""
        groups = self.groups
        if "groups" in member:
            known = {g.id: g for g in self.groups}
            ids = [str(g) for g in member.get("groups") or []]
            groups = tuple(known.get(i) or Group(i, names.get(i, "a group")) for i in ids)
        return replace(
            self,
            name=str(member.get("name", self.name)),
            role=str(member.get("role", self.role)),
            status=str(member.get("status", self.status)),
            employee_id=(
                (member.get("employee_id") or None) if "employee_id" in member else self.employee_id
            ),
            groups=groups,
        )

    def with_group(self, group: Group, *, member: bool) -> Profile:
        """The profile with the person put in (``member``) or taken out of ``group``."""
        others = tuple(g for g in self.groups if g.id != group.id)
        return replace(self, groups=(*others, group) if member else others)

    def differs_from(self, other: Profile) -> bool:
        """Whether what an admin can change is not the same in ``other``."""
        mine = (self.name, self.role, self.status, self.employee_id, {g.id for g in self.groups})
        theirs = (
            other.name,
            other.role,
            other.status,
            other.employee_id,
            {g.id for g in other.groups},
        )
        return mine != theirs

    @property
    def sorted_groups(self) -> list[Group]:
        """The groups by name."""
        return sorted(self.groups, key=lambda g: (g.name.casefold(), g.id))


@dataclass(frozen=True)
class HistoryLine:
    """One entry of the membership's history, in words."""

    at: str
    when: str
    text: str
    # Who made the change (reporting's ``by.label``: a name, "an import"...), and its kind.
    by: str = ""
    by_kind: str = ""


def _group(details: Mapping[str, Any], names: Mapping[str, str]) -> str:
    name = names.get(str(details.get("group_id", "")))
    return name if name else "a group that has since been deleted"


def history_text(event: str, details: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """A history entry (reporting's ``event`` and ``details``) as a sentence."""
    role = role_name(str(details.get("role", "")))
    via = VIA.get(str(details.get("via", "")), "")
    if event == "joined":
        return f"Joined as {role}" + (f", {via}" if via else "") + "."
    if event == "restored":
        return f"Came back as {role}" + (f", {via}" if via else "") + "."
    if event == "role_changed":
        previous = role_name(str(details.get("previous_role", "")))
        return f"Role changed from {previous} to {role}."
    if event == "status_changed":
        return f"Marked {details.get('status', '')}."
    if event == "employee_id_set":
        employee_id = details.get("employee_id")
        return f"Employee ID set to {employee_id}." if employee_id else "Employee ID cleared."
    if event == "joined_group":
        return f"Added to {_group(details, names)}."
    if event == "left_group":
        return f"Taken out of {_group(details, names)}."
    if event == "removed":
        return "Removed from the department."
    if event == "merged":
        return "Another account of this person was merged into this one (by an operator)."
    if event == "renamed":
        before, after = details.get("previous_name", ""), details.get("name", "")
        return f"Name corrected from {before} to {after}."
    return event.replace("_", " ").capitalize() + "."


def _by(by: Any) -> tuple[str, str]:
    # Unknown (recorded before reporting kept it, or the system's): nothing said.
    if not isinstance(by, Mapping) or by.get("kind") in (None, "system"):
        return ("", "")
    return (str(by.get("label") or ""), str(by.get("kind")))


def history(record: Mapping[str, Any], names: Mapping[str, str]) -> list[HistoryLine]:
    """The membership's history, newest first."""
    lines = [
        HistoryLine(
            str(e.get("at", "")),
            when(str(e.get("at", ""))),
            history_text(str(e.get("event", "")), e.get("details") or {}, names),
            *_by(e.get("by")),
        )
        for e in record.get("history") or []
        if isinstance(e, Mapping)
    ]
    return list(reversed(lines))


def group_names(record: Mapping[str, Any], groups: list[dict[str, Any]]) -> dict[str, str]:
    """Every group name the page knows: the department's groups and the person's."""
    names = {
        str(g.get("group_id")): str(g.get("name"))
        for g in record.get("groups") or []
        if isinstance(g, Mapping)
    }
    names.update({str(g.get("group_id")): str(g.get("name")) for g in groups})
    return names


@dataclass
class Outcome:
    """What an action on the record did: its notice, or its errors (shown next to it).

    ``notice`` is a sentence with ``{name}``, ``{email}``, ``{group}`` and the keys of
    ``values`` to fill in. ``member`` is membership's answer to a change (the member);
    ``group`` a group the person joined (True) or left (False), which membership
    answers with no body.
    """

    action: str  # the section it belongs to: role, employee_id, status, groups, ...
    notice: str = ""
    errors: FormErrors = field(default_factory=FormErrors)
    member: Mapping[str, Any] | None = None
    group: tuple[str, bool] | None = None
    values: dict[str, str] = field(default_factory=dict)

    def expected(self, shown: Profile, names: Mapping[str, str]) -> Profile | None:
        """The profile as membership now has it (None: the action changed none of it)."""
        if self.member is not None:
            return shown.apply(self.member, names)
        if self.group is not None:
            group_id, joined = self.group
            return shown.with_group(Group(group_id, names.get(group_id, "a group")), member=joined)
        return None

    def sentence(self, profile: Profile, names: Mapping[str, str]) -> str:
        """The notice, filled in."""
        group = names.get(self.group[0], "the group") if self.group else ""
        return self.notice.format(
            **self.values, name=profile.name, email=profile.email, group=group
        )


def catching_up(shown: Profile, expected: Profile | None) -> bool:
    """Whether reporting's record is behind what membership answered."""
    return expected is not None and shown.differs_from(expected)


def group_choices(profile: Profile, groups: list[dict[str, Any]]) -> list[Group]:
    """The department's groups the person is not in, by name (to add them to one)."""
    mine = {g.id for g in profile.groups}
    found = [Group(str(g.get("group_id")), str(g.get("name"))) for g in groups]
    return sorted((g for g in found if g.id not in mine), key=lambda g: (g.name.casefold(), g.id))


def parse_uuid(value: str) -> uuid.UUID | None:
    """``value`` as a UUID, or None."""
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        return None
