"""Export the JSON Schema of every message, and check the committed copies are current.

One file per payload type and version, ``<type>.v<version>.json``, holding the
schema of the whole envelope with that payload in ``data``; plus ``index.json``
mapping each topic to the types it carries. The files ship in the package
(``prodigy_users/contracts/schemas``) and live in the repository under
``contracts/schemas``: other teams read them, and the compatibility test
compares each new model against them.

Schemas of older payload versions stay committed on purpose: they are the
baseline a newer version must remain compatible with. Regenerate with
``prodigy-users contracts export`` (or ``python -m prodigy_users.contracts.schema_export``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from .envelope import Envelope, Payload
from .topics import PAYLOADS, TOPICS

# Resolved: a strict editable install runs this file through a symlink, and the
# schemas must be written beside the real one, in the repository.
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
INDEX = "index.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "prodigy-users contracts export"

_FILE_NAME = re.compile(r"^(?P<type>[a-z0-9_.]+)\.v(?P<version>\d+)\.json$")


def file_name(payload: type[Payload]) -> str:
    """``membership.member_added.v1.json`` for ``MemberAdded`` (version 1)."""
    return f"{payload.TYPE}.v{payload.VERSION}.json"


def parse_file_name(name: str) -> tuple[str, int] | None:
    """``(type, version)`` of a schema file name, or None for another file."""
    match = _FILE_NAME.match(name)
    if match is None:
        return None
    return match["type"], int(match["version"])


def envelope_schema(payload: type[Payload]) -> dict[str, Any]:
    """The JSON Schema of an envelope carrying ``payload`` (draft 2020-12, as pydantic emits)."""
    schema = Envelope[payload].model_json_schema()  # type: ignore[valid-type]
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def index_document() -> dict[str, Any]:
    """Every topic with its settings and the payload types (and schema files) it carries."""
    return {
        "topics": [
            {
                "name": t.name,
                "description": t.description,
                "owner": t.owner,
                "key": t.key,
                "partitions": t.partitions,
                "retention_ms": t.retention_ms,
                "cleanup_policy": t.cleanup_policy,
                "private": t.private,
                "dead_letter_topic": t.dlq,
                "types": [
                    {"type": p.TYPE, "version": p.VERSION, "schema": file_name(p)}
                    for p in t.payloads
                ],
            }
            for t in TOPICS
        ]
    }


def render(document: dict[str, Any]) -> str:
    """Stable text for a committed JSON file: indented, sorted keys, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content, as the current models generate them."""
    files = {file_name(p): render(envelope_schema(p)) for p in PAYLOADS.values()}
    files[INDEX] = render(index_document())
    return files


def export_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every current schema and the index into ``directory``; return the paths written.

    Files of older payload versions are left alone (they are the compatibility baseline).
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, content in sorted(expected_files().items()):
        path = directory / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def check_exported(directory: Path = SCHEMA_DIR) -> list[str]:
    """Differences between the committed files in ``directory`` and the current models.

    Empty when they agree. Older versions of a current type are expected and not
    reported; a file for a type no model produces any more, or for a version
    ahead of its model, is.
    """
    problems: list[str] = []
    for name, content in sorted(expected_files().items()):
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"{name}: differs from what the models generate")
    committed = sorted(directory.glob("*.json")) if directory.is_dir() else []
    for path in committed:
        parsed = parse_file_name(path.name)
        if parsed is None:
            continue
        type_, version = parsed
        model = PAYLOADS.get(type_)
        if model is None:
            problems.append(f"{path.name}: no payload model has the type {type_!r} any more")
        elif version > model.VERSION:
            problems.append(f"{path.name}: ahead of the model's version {model.VERSION}")
    return problems


def main_export(directory: Path | None = None, *, check: bool = False) -> int:
    """CLI body of ``prodigy-users contracts export [--dir DIR] [--check]``; the exit code."""
    target = directory or SCHEMA_DIR
    if check:
        problems = check_exported(target)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"Run `{REGENERATE}` to regenerate them.", file=sys.stderr)
        return 1 if problems else 0
    for path in export_schemas(target):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_export(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
