"""Reporting's rules: who sees reports, the name order, the opaque cursor, paging."""

from __future__ import annotations

import pytest

from prodigy_users.reporting.rules import (
    can_view_reports,
    sort_name,
)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("admin", True), ("officer", True), ("member", False), (None, False), ("", False)],
)
def test_admins_and_officers_see_reports(role: str | None, allowed: bool) -> None:
    assert can_view_reports(role) is allowed


def test_names_sort_without_regard_to_case_or_accents() -> None:
    names = ["bob", "Zoë", "Émile", "álvaro", "Ana", "zed"]
    assert sorted(names, key=sort_name) == ["álvaro", "Ana", "bob", "Émile", "zed", "Zoë"]
    assert sort_name("ÁNA") == sort_name("ana")
