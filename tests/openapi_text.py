"""The string fields of the request bodies an OpenAPI document describes, and what rule
each states, so that tests follow the documents: a field added tomorrow is found and
checked without anyone listing it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from prodigy_users.runtime.text import PASTED_PATTERN, TEXT_PATTERN

Kind = Literal["text", "pasted", "secret", "structured", "unruled"]
# Strings whose shape is checked exactly: nothing free-form gets through them.
STRUCTURED_FORMATS = {"uuid", "date-time", "date", "binary", "uri"}
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class StringField:
    """One string in a request body: where it is and the rule its schema states."""

    operation: str
    method: str
    path: str
    field: tuple[str, ...]  # "0" for an array's item
    kind: Kind
    required: bool

    @property
    def name(self) -> str:
        """As a field error names it (``admin.email``, ``allowed_domains.0``)."""
        return ".".join(self.field)


def kind_of(schema: dict[str, Any]) -> Kind:
    """The rule a string schema states."""
    if schema.get("pattern") == TEXT_PATTERN:
        return "text"
    if schema.get("pattern") == PASTED_PATTERN:
        return "pasted"
    if schema.get("format") == "password":
        return "secret"
    if "enum" in schema or "const" in schema or schema.get("format") in STRUCTURED_FORMATS:
        return "structured"
    return "unruled"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _strings(
    document: dict[str, Any], schema: dict[str, Any], field: tuple[str, ...], required: bool
) -> Iterator[tuple[tuple[str, ...], dict[str, Any], bool]]:
    schema = _resolve(document, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, ()):
            yield from _strings(document, branch, field, required)
    if schema.get("type") == "string":
        yield field, schema, required
    elif schema.get("type") == "array" and "items" in schema:
        yield from _strings(document, schema["items"], (*field, "0"), required)
    elif schema.get("type") == "object" or "properties" in schema:
        needed = set(schema.get("required", ()))
        for name, sub in schema.get("properties", {}).items():
            yield from _strings(document, sub, (*field, name), required and name in needed)


def string_fields(document: dict[str, Any]) -> list[StringField]:
    """Every string of every JSON or form request body of the document (each place once)."""
    found: dict[tuple[str, tuple[str, ...]], StringField] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            for media, body in content.items():
                if "schema" not in body or media == "multipart/form-data":
                    continue
                for field, schema, required in _strings(document, body["schema"], (), True):
                    key = (operation["operationId"], field)
                    kind = kind_of(schema)
                    if key in found and found[key].kind != "unruled":
                        continue  # a union: one branch said it
                    found[key] = StringField(
                        operation["operationId"], method, path, field, kind, required
                    )
    return list(found.values())


def example_value(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value the schema accepts, as plain as can be (for the fields around the one a
    test spoils)."""
    schema = _resolve(document, schema)
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    for key in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(key, ()) if _resolve(document, b).get("type") != "null"]
        if branches:
            return example_value(document, branches[0])
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "string":
        return {
            "email": "someone@example.org",
            "uuid": "00000000-0000-4000-8000-000000000001",
            "date-time": "2030-01-01T00:00:00Z",
            "password": "a long passphrase 123",
        }.get(schema.get("format", ""), "Ana Lima")
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "array":
        return [example_value(document, schema.get("items", {}))]
    if kind == "object" or "properties" in schema:
        return {
            name: example_value(document, sub)
            for name, sub in schema.get("properties", {}).items()
            if name in schema.get("required", ())
        }
    return None


def body_with(
    document: dict[str, Any], operation: dict[str, Any], field: tuple[str, ...], value: str
) -> Any:
    """A JSON body for ``operation`` whose string at ``field`` is ``value`` (the rest:
    example values)."""
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    body = example_value(document, schema)
    if not field:
        return value
    body = body if isinstance(body, dict) else {}
    target: Any = body
    node = _resolve(document, schema)
    for i, part in enumerate(field):
        last = i == len(field) - 1
        if part == "0":
            continue  # handled with its parent: a one-item list
        sub = _property(document, node, part)
        following = field[i + 1] if not last else None
        if following == "0":
            item: Any = value if i + 1 == len(field) - 1 else {}
            target[part] = [item]
            target = target[part][0]
            node = _resolve(document, _items(document, sub))
        elif last:
            target[part] = value
        else:
            existing = target.get(part)
            target[part] = existing if isinstance(existing, dict) else {}
            target = target[part]
            node = _resolve(document, sub)
    return body


def _property(document: dict[str, Any], node: dict[str, Any], name: str) -> dict[str, Any]:
    for candidate in [node, *node.get("anyOf", ()), *node.get("allOf", ())]:
        candidate = _resolve(document, candidate)
        if name in candidate.get("properties", {}):
            return _resolve(document, candidate["properties"][name])
    return {}


def _items(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    for candidate in [node, *node.get("anyOf", ())]:
        candidate = _resolve(document, candidate)
        if candidate.get("type") == "array":
            return _resolve(document, candidate.get("items", {}))
    return {}
