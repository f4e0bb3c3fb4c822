"""Backward-compatibility rules for the JSON Schemas of published messages.

Topics keep their events (reporting rebuilds its read models by reading from
the beginning), so a new schema must read every old event, and subscribers we
do not control must keep reading every new one. A change is therefore
breaking when it

- removes a property,
- makes an optional property required, or adds a new required property (new
  readers would reject old events),
- makes a required property optional (old readers would reject new events),
- changes a property's type (``string`` -> ``integer``, nullable -> not, ...),
- narrows an enum or ``Literal`` (removes a value, or restricts a free value),
- changes a property's ``format`` (``uuid``, ``email``, ``date-time``, ...).

Adding an optional property and adding enum values are compatible: subscribers
must ignore what they do not know. ``$ref``s are resolved against each
schema's own root, so renaming a ``$defs`` entry is not a change by itself.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# Keywords whose branches together make up one value's schema (pydantic writes
# ``Optional[X]`` as ``anyOf: [X, {"type": "null"}]``).
_COMBINATORS = ("anyOf", "oneOf", "allOf")
# Nesting deeper than this only happens in a recursive model, which repeats itself.
_MAX_DEPTH = 32


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every way in which ``new_schema`` breaks readers of ``old_schema`` (empty: compatible)."""
    problems: list[str] = []
    _compare(old_schema, old_schema, new_schema, new_schema, "", problems, 0)
    return problems


def _compare(
    old: Schema,
    old_root: Schema,
    new: Schema,
    new_root: Schema,
    path: str,
    problems: list[str],
    depth: int,
) -> None:
    if depth > _MAX_DEPTH:
        return  # a recursive model: its repeating part has been compared already
    old_branches = _branches(old, old_root)
    new_branches = _branches(new, new_root)
    where = path or "(root)"

    old_types, new_types = _types(old_branches), _types(new_branches)
    if old_types != new_types:
        problems.append(f"{where}: type changed from {_show(old_types)} to {_show(new_types)}")
        return  # everything below would only repeat this

    old_enum, new_enum = _enum(old_branches), _enum(new_branches)
    if old_enum is not None and new_enum is not None and old_enum - new_enum:
        problems.append(f"{where}: enum values removed: {_show(old_enum - new_enum)}")
    elif old_enum is None and new_enum is not None:
        problems.append(f"{where}: restricted to the values {_show(new_enum)}")

    old_formats, new_formats = _formats(old_branches), _formats(new_branches)
    if old_formats != new_formats:
        problems.append(
            f"{where}: format changed from {_show(old_formats)} to {_show(new_formats)}"
        )

    _compare_properties(old_branches, old_root, new_branches, new_root, path, problems, depth)

    old_items, new_items = _items(old_branches), _items(new_branches)
    if old_items is not None and new_items is not None:
        _compare(old_items, old_root, new_items, new_root, f"{path}[]", problems, depth + 1)


def _compare_properties(
    old_branches: list[Schema],
    old_root: Schema,
    new_branches: list[Schema],
    new_root: Schema,
    path: str,
    problems: list[str],
    depth: int,
) -> None:
    old_props, old_required = _properties(old_branches)
    new_props, new_required = _properties(new_branches)
    prefix = f"{path}." if path else ""
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{prefix}{name}: property removed")
            continue
        if name in new_required and name not in old_required:
            problems.append(f"{prefix}{name}: optional property became required")
        elif name in old_required and name not in new_required:
            problems.append(f"{prefix}{name}: required property became optional")
        _compare(old_prop, old_root, new_props[name], new_root, prefix + name, problems, depth + 1)
    for name in sorted(new_required - old_props.keys()):
        problems.append(f"{prefix}{name}: new required property")


def _resolve(node: Schema, root: Schema) -> Schema:
    """Follow ``$ref`` (a local JSON pointer); keywords next to it override the target."""
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        target: Any = root
        for part in ref.lstrip("#").strip("/").split("/"):
            if part:
                target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings}
    return node


def _branches(node: Schema, root: Schema) -> list[Schema]:
    """The alternatives a value may take, flattened and with refs resolved."""
    node = _resolve(node, root)
    for keyword in _COMBINATORS:
        if keyword in node:
            out: list[Schema] = []
            for branch in node[keyword]:
                out.extend(_branches(branch, root))
            return out
    return [node]


def _types(branches: list[Schema]) -> frozenset[str]:
    out: set[str] = set()
    for branch in branches:
        declared = branch.get("type")
        if isinstance(declared, str):
            out.add(declared)
        elif isinstance(declared, list):
            out.update(str(t) for t in declared)
        elif "properties" in branch:
            out.add("object")
        else:
            out.add("any")
    return frozenset(out)


def _enum(branches: list[Schema]) -> frozenset[Any] | None:
    """The allowed values, or None when any non-null branch allows a free value."""
    values: set[Any] = set()
    for branch in branches:
        if branch.get("type") == "null":
            continue
        if "const" in branch:
            values.add(_hashable(branch["const"]))
        elif "enum" in branch:
            values.update(_hashable(v) for v in branch["enum"])
        else:
            return None
    return frozenset(values) if values else None


def _formats(branches: list[Schema]) -> frozenset[str]:
    return frozenset(str(b["format"]) for b in branches if "format" in b)


def _properties(branches: list[Schema]) -> tuple[dict[str, Schema], set[str]]:
    props: dict[str, Schema] = {}
    required: set[str] = set()
    for branch in branches:
        props.update(branch.get("properties", {}))
        required.update(branch.get("required", ()))
    return props, required


def _items(branches: list[Schema]) -> Schema | None:
    for branch in branches:
        items = branch.get("items")
        if isinstance(items, dict):
            return items
    return None


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value


def _show(values: frozenset[Any]) -> str:
    return ", ".join(sorted(repr(v) if not isinstance(v, str) else v for v in values)) or "none"
