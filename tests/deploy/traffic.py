"""What each service reads and writes on Kafka, found in its code rather than in the
registry (helpers for tests/deploy, which hold the two against each other).

Reads: the topics its handler table subscribes to, as the runtime's consumer
subscribes (``runtime.consumer.subscribed_topics`` over the ``ServiceSpec``'s
``handlers``). Writes: the topics of the events it emits through its outbox, every
``<unit of work>.emit(SomeEvent(...), key=...)`` in its source.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.topics import PAYLOADS, Topic, topic_of
from prodigy_users.runtime.consumer import subscribed_topics
from prodigy_users.runtime.keys import generate_keys
from prodigy_users.runtime.service import ServiceSpec
from prodigy_users.stack import SERVICES

_BY_CLASS_NAME = {p.__name__: p for p in PAYLOADS.values()}


@contextlib.contextmanager
def specs(keys_dir: Path) -> Iterator[dict[str, ServiceSpec]]:
    """Every service's ``ServiceSpec`` as its app builds it (with throwaway key files, the
    settings some services need to be built)."""
    keys = generate_keys(keys_dir)
    env = {
        "PRODIGY_SIGNING_KEY_PATH": keys["signing_key"],
        "PRODIGY_JWKS_PATH": keys["jwks"],
        "PRODIGY_SEAL_PUBLIC_KEY_PATH": keys["seal_public"],
        "PRODIGY_SEAL_PRIVATE_KEY_PATH": keys["seal_private"],
        "PRODIGY_IDENTITY_SEAL_PUBLIC_KEY_PATH": keys["identity_seal_public"],
        "PRODIGY_IDENTITY_SEAL_PRIVATE_KEY_PATH": keys["identity_seal_private"],
    }
    if "links" in keys:
        env["PRODIGY_LINK_SECRET_PATH"] = keys["links"]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, os.fspath(value))
        yield {
            service: importlib.import_module(f"prodigy_users.{service}.app").spec()
            for service in SERVICES
        }


def read_topics(spec: ServiceSpec) -> list[Topic]:
    """The topics the service's consumer subscribes to."""
    return subscribed_topics(spec.handlers)


@dataclass(frozen=True)
class Emit:
    """One ``.emit(...)`` of a unit of work in a service's source."""

    where: str
    payload: type[Payload] | None  # None: not a payload built in the call


def _source_dir(service: str) -> Path:
    init = importlib.import_module(f"prodigy_users.{service}").__file__
    assert init is not None
    return Path(init).resolve().parent  # through the strict editable install's links


def _payload_built(node: ast.expr) -> type[Payload] | None:
    """``SomeEvent`` for ``SomeEvent(...)`` or ``SomeEvent.model_construct(...)``."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "model_construct":
        func = func.value
    name = func.id if isinstance(func, ast.Name) else None
    return _BY_CLASS_NAME.get(name) if name else None


def emits(service: str) -> list[Emit]:
    """Every ``<unit>.emit(payload, key=...)`` in the service's modules (migrations aside)."""
    root = _source_dir(service)
    found = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and any(k.arg == "key" for k in node.keywords)  # UnitOfWork.emit's signature
                and node.args
            ):
                where = f"{path.relative_to(root.parent)}:{node.lineno}"
                found.append(Emit(where, _payload_built(node.args[0])))
    return found


def written_topics(service: str) -> set[str]:
    """The topics of the events the service emits through its outbox."""
    unknown = [e.where for e in emits(service) if e.payload is None]
    assert not unknown, (
        f"{service}: cannot tell which event these emit; build the payload in the call "
        f"(`uow.emit(SomeEvent(...), key=...)`) so its topic can be checked: {unknown}"
    )
    return {topic_of(e.payload).name for e in emits(service) if e.payload is not None}
