"""The duplicate-accounts report's rules: who is reported together, and why."""

from __future__ import annotations

import uuid

from prodigy_users.stack.duplicates import Holder, name_key, suspects


def _h(name: str, *emails: str) -> Holder:
    return Holder(uuid.uuid4(), name, emails)


def test_names_are_compared_without_case_accents_punctuation_or_spacing() -> None:
    assert name_key("  Tína  CRUZ-") == name_key("tina cruz") == "tina cruz"
    assert name_key("Ana Lima") != name_key("Ana Lyma")


def test_equal_names_are_reported_together_whatever_their_domains() -> None:
    a, b = _h("Sam Rivera", "sam@home.example"), _h("Sam Rivera", "s.rivera@work.example")
    [group] = suspects([a, b, _h("Someone Else", "x@home.example")])
    assert group.reason == "same name" and set(group.accounts) == {a, b}


def test_similar_names_are_reported_only_with_an_address_at_one_domain() -> None:
    a = _h("Tina Cruz", "tina.home@example.org")
    b = _h("tina  cruz", "other@elsewhere.example", "tina.work@EXAMPLE.org")
    c = _h("TINA CRUZ", "tc@third.example")
    [group] = suspects([a, b, c])
    assert group.reason == "similar name, same domain"
    assert set(group.accounts) == {a, b} and group.key == "tina cruz @example.org"


def test_one_person_with_many_addresses_is_not_reported() -> None:
    assert suspects([_h("Ana Lima", "ana@a.example", "ana@b.example")]) == []


def test_a_group_reported_for_its_equal_name_is_not_repeated() -> None:
    a, b = _h("Bo Lee", "bo@x.example"), _h("Bo Lee", "bo2@x.example")
    assert [g.reason for g in suspects([a, b])] == ["same name"]
