"""Which characters text may hold: in requests (field types) and in files we write.

Coming in, every free-text field refuses control characters: C0 (U+0000-U+001F, so
tab and line breaks too), DEL, C1 (U+0080-U+009F), the Unicode line and paragraph
separators, and lone surrogates (no UTF-8 form: PostgreSQL cannot store them). The
request models use the types below, so a new field is one annotation away from the
rule, and the OpenAPI document states it as the field's ``pattern``. A field that
needs line breaks (a pasted list of addresses) takes ``Pasted``: tab, CR and LF
allowed, nothing else. Passwords (``Secret``) are opaque and refuse only what cannot
be stored or hashed (NUL, lone surrogates).

Going out, text that was stored before these rules (or arrives from elsewhere) is
made safe for the file: ``plain_text`` drops what cannot be shown, ``cell_text``
also neutralises what a spreadsheet would run as a formula. The order matters: a
control character in front of ``=`` hides the formula from a check that runs first.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, EmailStr, Field
from pydantic_core import PydanticCustomError

# Refused in free text (see the module's doc). As a JSON Schema pattern, too.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# ``Pasted``: the same, less tab, LF and CR (what separates pasted lines and cells).
_FORBIDDEN_PASTED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# ``Secret``: what no string may hold anywhere (see ``runtime.text_guard``).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
PASTED_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]*$"

_NAMES = {
    "\x00": "NUL",
    "\t": "tab",
    "\n": "line feed",
    "\r": "carriage return",
    "\x0b": "vertical tab",
    "\x0c": "form feed",
    "\x1b": "escape",
    "\x7f": "delete",
    "\x85": "next line",
    "\u2028": "line separator",
    "\u2029": "paragraph separator",
}


def describe(char: str) -> str:
    """``U+0009 (tab)``: a character as a message names it."""
    code = ord(char)
    if char in _NAMES:
        name = _NAMES[char]
    elif 0xD800 <= code <= 0xDFFF:
        name = "lone surrogate"
    else:
        name = unicodedata.name(char, "").lower()
    return f"U+{code:04X}" + (f" ({name})" if name else "")


def control_in(value: str, *, pasted: bool = False) -> tuple[int, str] | None:
    """The first refused character of ``value`` and its position, or None."""
    found = (_FORBIDDEN_PASTED if pasted else _FORBIDDEN).search(value)
    return (found.start(), found.group()) if found else None


def control_message(position: int, char: str) -> str:
    """What a field error says about a refused character."""
    return (
        f"must not contain control characters (tabs, line breaks and the like): "
        f"{describe(char)} at position {position + 1}"
    )


def _refuse(value: Any, *, pasted: bool) -> Any:
    # A list is checked item by item here, before the field's type: a union such as
    # ``list[Pasted] | Pasted`` would otherwise report one error per branch it tried.
    items = enumerate(value) if isinstance(value, list) else [(None, value)]
    for index, item in items:
        found = control_in(item, pasted=pasted) if isinstance(item, str) else None
        if found is not None:
            position, char = found
            where = "" if index is None else f"item {index + 1}: "
            raise PydanticCustomError(
                "control_character",
                "{where}must not contain control characters (tabs, line breaks and the like"
                "): {character} at position {position}",
                {"where": where, "character": describe(char), "position": position + 1},
            )
    return value


def refuse_controls(value: Any) -> Any:
    """A pydantic before-validator: a string with a control character is refused (a
    list: each of its strings)."""
    return _refuse(value, pasted=False)


def refuse_pasted_controls(value: Any) -> Any:
    """Like ``refuse_controls``, allowing the tab, CR and LF of pasted text (a string, or
    each string of a list)."""
    return _refuse(value, pasted=True)


def refuse_unstorable(value: Any) -> Any:
    """A pydantic before-validator: NUL and lone surrogates are refused."""
    if isinstance(value, str):
        found = UNSTORABLE.search(value)
        if found is not None:
            raise PydanticCustomError(
                "unstorable_character",
                "must not contain {character}",
                {"character": describe(found.group())},
            )
    return value


def _collapsed(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise PydanticCustomError("blank", "must not be blank")
    return value


#: Free text on one line: no control characters. Add a ``max_length`` where it is used.
Text = Annotated[
    str, BeforeValidator(refuse_controls), Field(json_schema_extra={"pattern": TEXT_PATTERN})
]

#: A name (of a person, group or department): text, spaces collapsed, not blank.
Name = Annotated[
    str,
    BeforeValidator(refuse_controls),
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(_collapsed),
]

#: An email address as pydantic's ``EmailStr`` checks it, and with no control
#: characters (``EmailStr`` alone drops surrounding tabs and line breaks silently).
Email = Annotated[
    EmailStr,
    BeforeValidator(refuse_controls),
    Field(json_schema_extra={"pattern": TEXT_PATTERN}),
]

#: Pasted text (lines, cells): tab, CR and LF allowed, no other control character.
Pasted = Annotated[
    str,
    BeforeValidator(refuse_pasted_controls),
    Field(json_schema_extra={"pattern": PASTED_PATTERN}),
]

#: A password: opaque, any character that can be stored and hashed.
Secret = Annotated[
    str,
    BeforeValidator(refuse_unstorable),
    Field(json_schema_extra={"format": "password", "writeOnly": True}),
]


# -- text leaving in files ----------------------------------------------------------------

# Controls that separate (tabs, line breaks, the information separators) become a
# space; the others, and what XML 1.0 cannot carry at all, go.
_AS_SPACE = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f\x85\u2028\u2029]")
_DROPPED = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")

#: A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV
#: injection"); tab and CR cannot remain after ``plain_text`` but are kept for clarity.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain_text(value: str) -> str:
    """``value`` without control characters, lone surrogates or XML-illegal characters
    (separators become spaces), trimmed when anything was taken out."""
    if value.isprintable():  # the usual case, and fast: nothing to take out
        return value
    cleaned = _DROPPED.sub("", _AS_SPACE.sub(" ", value))
    return cleaned.strip() if cleaned != value else value


def looks_like_formula(value: str) -> bool:
    """Whether a spreadsheet could run ``value`` as a formula (leading spaces ignored)."""
    return value.lstrip(" ").startswith(FORMULA_STARTS)


def cell_text(value: str) -> str:
    """``value`` safe for a spreadsheet cell: ``plain_text`` first, then a leading ``'``
    if what is left would start a formula."""
    value = plain_text(value)
    return "'" + value if looks_like_formula(value) else value
