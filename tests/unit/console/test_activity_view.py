"""The activity page's view: its filters as URLs carry them, reporting's queries, and
actions and details in words."""

from __future__ import annotations

from urllib.parse import parse_qsl

from prodigy_users.console.activity_view import ActivityView, action_name, details_text


def test_filters_go_to_reporting_and_the_page_to_the_console_s_urls() -> None:
    view = ActivityView.parse(
        {
            "person": " p1 ",
            "action": "removed",
            "from": "2026-12-01",
            "to": "",
            "cursor": "c",
            "page": "3",
        }
    )
    assert view.filters() == [("person", "p1"), ("action", "removed"), ("from", "2026-12-01")]
    assert view.report_params()[-2:] == [("limit", "50"), ("cursor", "c")]
    assert dict(parse_qsl(view.export_query())) == {
        "person": "p1",
        "action": "removed",
        "from": "2026-12-01",
    }
    assert dict(parse_qsl(view.next_query("d"))) == {
        "person": "p1",
        "action": "removed",
        "from": "2026-12-01",
        "cursor": "d",
        "page": "4",
    }
    assert "cursor" not in view.first_query() and "page" not in view.first_query()
    assert dict(parse_qsl(view.person_query("p2")))["person"] == "p2"
    # A page number without a cursor means nothing: the first page.
    assert ActivityView.parse({"page": "7"}).page == 1
    assert not ActivityView.parse({}).filtered


def test_actions_and_details_in_words() -> None:
    assert action_name("role_changed") == "Role changed"
    assert action_name("something_new") == "Something new"
    groups = {"g1": "Night shift"}
    assert (
        details_text(
            {"action": "role_changed", "details": {"role": "officer", "previous_role": "member"}},
            groups,
        )
        == "member → officer"
    )
    assert (
        details_text({"action": "joined_group", "details": {"group_id": "g1"}}, groups)
        == "Night shift"
    )
    assert (
        details_text({"action": "left_group", "details": {"group_id": "g2"}}, groups)
        == "a deleted group"
    )
    assert (
        details_text({"action": "employee_id_set", "details": {"employee_id": None}}, groups)
        == "cleared"
    )
    assert (
        details_text({"action": "joined", "details": {"role": "member", "via": "import"}}, groups)
        == "member, bulk upload"
    )
    assert details_text({"action": "removed", "details": {}}, groups) == ""
    renamed = {"action": "renamed", "details": {"name": "Ana Lima", "previous_name": "Ana Lyma"}}
    assert details_text(renamed, groups) == "Ana Lyma → Ana Lima"
    assert action_name("renamed") == "Name corrected"
