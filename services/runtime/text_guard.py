"""No string of any request may hold a NUL character (or a lone surrogate).

PostgreSQL refuses U+0000 in text, and a lone surrogate has no UTF-8 form: either,
reaching a query or a hash, was an HTTP 500. The request models refuse control
characters field by field (``runtime.text``); this plain ASGI middleware is the net
under them, so a route added tomorrow, a query parameter or a form field is covered
without anyone thinking of it. It looks at the path, the query string and the body
strings of JSON, URL-encoded and multipart requests (field names and values, file
names; never a file's content), and answers 422 ``validation`` naming the field, as
the request models would.

Bodies are read whole before the route runs (the route then reads them again from
memory); larger bodies than ``max_body`` pass unchecked, as every route refuses them
anyway. A JSON body is parsed only when its bytes contain an escape that can be
NUL or a surrogate, so the usual request costs one scan of its bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import Problem, problem_response
from .text import UNSTORABLE, describe

MAX_BODY = 16 * 1024 * 1024
# ``\u0000`` or the escape of a surrogate (``\ud800``-``\udfff``) in JSON text.
_SUSPECT_JSON = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")
# What a field error names when no field can be named.
_WHERE = {"path": "(path)", "query": "(query)", "body": "(body)"}

FieldError = tuple[str, str]


def _message(char: str) -> str:
    return f"must not contain {describe(char)}"


def _bad(text: str) -> str | None:
    found = UNSTORABLE.search(text)
    return found.group() if found else None


def _fields(pairs: list[tuple[str, str]], where: str) -> FieldError | None:
    for name, value in pairs:
        for text in (name, value):
            char = _bad(text)
            if char is not None:
                return (name if _bad(name) is None else _WHERE[where]), _message(char)
    return None


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string of a JSON document (keys too), with where it is."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))


def json_problem(body: bytes) -> FieldError | None:
    """The first string of a JSON body that holds NUL or a lone surrogate."""
    if b"\x00" not in body and _SUSPECT_JSON.search(body) is None:
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None  # not JSON: the route answers that
    for path, text in _walk(document, ()):
        char = _bad(text)
        if char is not None:
            named = all(_bad(part) is None for part in path)
            return (".".join(path) if path and named else _WHERE["body"]), _message(char)
    return None


def form_problem(body: bytes) -> FieldError | None:
    """NUL in a URL-encoded form's names or values (decoded as Starlette does)."""
    return _fields(parse_qsl(body.decode("latin-1"), keep_blank_values=True), "body")


class _PartScan:
    """Multipart callbacks that keep names, file names and the values of plain fields."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []
        self._header = b""
        self._value = b""
        self._disposition = b""
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._disposition, self._data = b"", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def on_part_end(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            # A file: its name is checked, its content never is.
            self.pairs.append((name, options[b"filename"].decode("utf-8", "replace")))
        else:
            self.pairs.append((name, bytes(self._data).decode("utf-8", "replace")))
        self._data = bytearray()


def multipart_problem(body: bytes, boundary: bytes) -> FieldError | None:
    """NUL in a multipart form's field names, file names or plain values."""
    scan = _PartScan()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": scan.on_part_begin,
            "on_header_field": scan.on_header_field,
            "on_header_value": scan.on_header_value,
            "on_header_end": scan.on_header_end,
            "on_part_data": scan.on_part_data,
            "on_part_end": scan.on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except Exception:
        return None  # not a readable form: the route answers that
    return _fields(scan.pairs, "body")


def _body_kind(headers: Headers) -> tuple[str, bytes] | None:
    """``("json"|"form"|"multipart", boundary)`` for a body worth reading, else None."""
    content_type = headers.get("content-type")
    if not content_type:
        return None
    kind, options = parse_options_header(content_type)
    json_like = kind == b"application/json" or kind.endswith(b"+json")
    if kind.startswith(b"application/") and json_like:
        return "json", b""
    if kind == b"application/x-www-form-urlencoded":
        return "form", b""
    if kind == b"multipart/form-data" and options.get(b"boundary"):
        return "multipart", options[b"boundary"]
    return None


def path_problem(scope: Scope) -> FieldError | None:
    """NUL in the path: named by the parameter that holds it, when the path is one of
    the app's documented templates (a NUL path is rare: the templates are compiled then)."""
    path: str = scope.get("path", "")
    char = _bad(path)
    if char is None:
        return None
    openapi = getattr(scope.get("app"), "openapi", None)
    templates = openapi().get("paths", {}) if callable(openapi) else {}
    for template in templates:
        if "{" not in template:
            continue
        match = compile_path(template)[0].match(path)
        if match is not None:
            for name, value in match.groupdict().items():
                if _bad(value) is not None:
                    return name, _message(char)
    return _WHERE["path"], _message(char)


def query_problem(scope: Scope) -> FieldError | None:
    """NUL in a query parameter's name or value (decoded as Starlette does)."""
    raw: bytes = scope.get("query_string", b"")
    if b"%00" not in raw and b"\x00" not in raw:
        return None  # (percent-decoding replaces invalid UTF-8: no surrogate can appear)
    return _fields(parse_qsl(raw.decode("latin-1"), keep_blank_values=True), "query")


def refusal(field: str, message: str) -> Problem:
    """The 422 the guard answers, shaped as request validation's."""
    return Problem(
        422,
        "validation",
        "Invalid request",
        "Some fields are missing or invalid; see `errors`.",
        errors=[{"field": field, "message": message}],
    )


class TextGuard:
    """Plain ASGI middleware: a request with NUL (or a lone surrogate) in any of its
    strings is answered 422 before any route sees it."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request; pass it on (with its body replayed) or refuse it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = path_problem(scope) or query_problem(scope)
        if found is not None:
            await problem_response(refusal(*found), None)(scope, receive, send)
            return
        headers = Headers(scope=scope)
        kind = _body_kind(headers)
        length = headers.get("content-length", "")
        if kind is None or (length.isdigit() and int(length) > self.max_body):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False) or size > self.max_body:
                break
        complete = messages[-1]["type"] == "http.request" and not messages[-1].get("more_body")
        if complete and size <= self.max_body:
            body = b"".join(m.get("body", b"") for m in messages)
            what, boundary = kind
            if what == "json":
                found = json_problem(body)
            elif what == "form":
                found = form_problem(body)
            else:
                found = multipart_problem(body, boundary)
            if found is not None:
                await problem_response(refusal(*found), None)(scope, receive, send)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
