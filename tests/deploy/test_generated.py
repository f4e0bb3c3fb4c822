"""The KafkaTopic/KafkaUser manifests are what the topic registry generates."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodigy_users.contracts.topics import TOPICS, consumed_by, produced_by
from prodigy_users.runtime.keys import generate_keys
from prodigy_users.stack import SERVICES
from prodigy_users.stack.cli import main as cli_main
from prodigy_users.stack.deploy_gen import (
    TOPICS_PATH,
    USERS_PATH,
    consumer_group,
    kafka_user_name,
    render_topics,
    render_users,
    to_yaml,
    topic_manifests,
    user_manifests,
)

from .manifests import REPO


def test_committed_topics_are_what_the_registry_generates() -> None:
    assert (REPO / TOPICS_PATH).read_text() == render_topics(), (
        f"run `prodigy-users deploy topics --output {TOPICS_PATH}`"
    )


def test_committed_users_are_what_the_registry_generates() -> None:
    assert (REPO / USERS_PATH).read_text() == render_users(), (
        f"run `prodigy-users deploy users --output {USERS_PATH}`"
    )


def test_the_yaml_reads_back_as_the_objects() -> None:
    assert list(yaml.safe_load_all(render_topics())) == topic_manifests()
    assert list(yaml.safe_load_all(render_users())) == user_manifests()
    awkward: dict[str, Any] = {
        "yes": "no",
        "on": "1",
        "colon": "a: b",
        "hash": "#not a comment",
        "empty": "",
        "quote": 'say "hi"',
        "newline": "two\nlines",
        "unicode": "Zoë",
        "negative": -1,
        "flag": True,
        "none": None,
        "no list": [],
        "no map": {},
        "nested": [{"a": [1, "2"], "b": {"c": "d"}}, "x", {"e": {}}],
        "dots.and/slashes": "strimzi.io/cluster",
    }
    assert list(yaml.safe_load_all(to_yaml([awkward], "a\nheader"))) == [awkward]


def _grants(service: str) -> dict[tuple[str, str], set[str]]:
    (user,) = [u for u in user_manifests() if u["metadata"]["name"] == kafka_user_name(service)]
    return {
        (acl["resource"]["type"], acl["resource"]["name"]): set(acl["operations"])
        for acl in user["spec"]["authorization"]["acls"]
    }


@pytest.mark.parametrize("service", SERVICES)
def test_each_user_writes_what_it_owns_and_reads_what_it_consumes(service: str) -> None:
    grants = _grants(service)
    writes = {name for (kind, name), ops in grants.items() if kind == "topic" and "Write" in ops}
    reads = {name for (kind, name), ops in grants.items() if kind == "topic" and "Read" in ops}
    consumed = consumed_by(service)
    assert writes == {t.name for t in produced_by(service)} | {t.dlq for t in consumed}
    assert reads == {t.name for t in consumed}
    assert grants[("group", consumer_group(service))] == {"Read"}
    assert {kind for kind, _ in grants} == {"topic", "group"}
    # Nothing beyond Read, Write and Describe: no Create, Delete, Alter, All.
    assert set().union(*grants.values()) <= {"Read", "Write", "Describe"}
    # Every topic is at least visible: the runtime lists them when it starts.
    assert {name for kind, name in grants if kind == "topic"} == {
        n for t in TOPICS for n in (t.name, t.dlq)
    }


def test_consumers_read_no_topic_the_registry_does_not_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler on a topic the registry does not list would be denied by its ACLs."""
    import importlib

    keys = generate_keys(tmp_path)
    env = {
        "PRODIGY_SIGNING_KEY_PATH": keys["signing_key"],
        "PRODIGY_JWKS_PATH": keys["jwks"],
        "PRODIGY_SEAL_PUBLIC_KEY_PATH": keys["seal_public"],
        "PRODIGY_SEAL_PRIVATE_KEY_PATH": keys["seal_private"],
    }
    if "links" in keys:
        env["PRODIGY_LINK_SECRET_PATH"] = keys["links"]
    for key, value in env.items():
        monkeypatch.setenv(key, os.fspath(value))
    for service in SERVICES:
        spec = importlib.import_module(f"prodigy_users.{service}.app").spec()
        handled = {t.name for t in TOPICS if any(p in spec.handlers for p in t.payloads)}
        assert handled <= {t.name for t in consumed_by(service)}, service


def test_deploy_check_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["deploy", "topics", "--check", "--output", str(REPO / TOPICS_PATH)]) == 0
    assert cli_main(["deploy", "users", "--check", "--output", str(REPO / USERS_PATH)]) == 0
    stale = tmp_path / "topics.yaml"
    stale.write_text(render_topics().replace("partitions: 6", "partitions: 5", 1))
    assert cli_main(["deploy", "topics", "--check", "--output", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert cli_main(["deploy", "users", "--output", str(tmp_path / "u.yaml")]) == 0
    assert (tmp_path / "u.yaml").read_text() == render_users()


def test_deploy_keys_writes_the_files_the_secrets_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["deploy", "keys", "--dir", str(tmp_path / "keys")]) == 0
    out = capsys.readouterr().out
    for name in ("signing.pem", "jwks.json", "seal.pem", "seal.pub.pem"):
        assert (tmp_path / "keys" / name).exists()
    assert len((tmp_path / "keys" / "console.key").read_bytes().strip()) >= 32
    for secret in (
        "prodigy-signing-key",
        "prodigy-seal-key",
        "prodigy-public-keys",
        "prodigy-console-secret",
    ):
        assert secret in out
