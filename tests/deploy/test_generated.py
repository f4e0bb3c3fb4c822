"""The KafkaTopic/KafkaUser manifests are what the topic registry generates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodigy_users.contracts.topics import TOPICS, consumed_by, produced_by
from prodigy_users.runtime.service import ServiceSpec
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

from . import traffic
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


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceSpec]]:
    with traffic.specs(tmp_path_factory.mktemp("keys")) as built:
        yield built


def _committed_grants(service: str) -> dict[tuple[str, str], set[str]]:
    """A service's ACLs as the committed users.yaml gives them: (kind, name) -> operations."""
    users = yaml.safe_load_all((REPO / USERS_PATH).read_text())
    (user,) = [u for u in users if u and u["metadata"]["name"] == kafka_user_name(service)]
    grants: dict[tuple[str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl["resource"]["patternType"] == "literal" and acl["host"] == "*", acl
        key = (acl["resource"]["type"], acl["resource"]["name"])
        assert key not in grants, f"{service}: two ACLs for {key}"
        grants[key] = set(acl["operations"])
    return grants


@pytest.mark.parametrize("service", SERVICES)
def test_the_registry_names_the_consumers_the_handler_tables_make(
    specs: dict[str, ServiceSpec], service: str
) -> None:
    spec = specs[service]
    reads = {t.name for t in traffic.read_topics(spec)}
    assert reads == {t.name for t in consumed_by(service)}, (
        f"{service} subscribes to {sorted(reads)}: make the registry's consumers say so"
    )
    # Batches and skips only refine handled types: they subscribe to nothing more.
    assert spec.batch_types <= spec.handlers.keys()
    assert spec.ignored.keys() <= spec.handlers.keys()


@pytest.mark.parametrize("service", SERVICES)
def test_the_registry_names_the_owner_that_emits_each_topics_events(service: str) -> None:
    writes = traffic.written_topics(service)
    assert writes == {t.name for t in produced_by(service)}, (
        f"{service} emits events of {sorted(writes)}: make the registry's owners say so"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_each_users_grants_are_exactly_what_it_handles_and_publishes(
    specs: dict[str, ServiceSpec], service: str
) -> None:
    """Derived from the code, not from the registry the grants are generated from."""
    reads = {t.name for t in traffic.read_topics(specs[service])}
    writes = traffic.written_topics(service) | {f"{name}.dlq" for name in reads}
    # Every topic is visible (Describe): the runtime lists them when it starts.
    wanted: dict[tuple[str, str], set[str]] = {
        ("topic", name): {"Describe"} for t in TOPICS for name in (t.name, t.dlq)
    }
    for name in reads:
        wanted["topic", name].add("Read")
    for name in writes:
        wanted["topic", name].add("Write")
    if reads:
        wanted["group", consumer_group(service)] = {"Read"}
    assert _committed_grants(service) == wanted


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
