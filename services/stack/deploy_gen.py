"""Kubernetes manifests generated from the topic registry: Strimzi ``KafkaTopic`` and
``KafkaUser`` resources (``prodigy-users deploy topics|users``).

The registry (``contracts/topics.py``) says which topics exist, who writes and who
reads each one, and how long it keeps; everything here follows from it, so a
topic added to the registry reaches the cluster (and the ACLs) by running the
generator again. ``tests/deploy`` fails while the committed files disagree.

The YAML is written by a small emitter of our own (block style, keys in the
order given, strings quoted unless plainly safe) so the output is byte-stable
and the module needs nothing beyond the standard library at run time.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import SERVICES

if TYPE_CHECKING:
    from prodigy_users.contracts.topics import Topic

# The registry and settings are imported where they are used: the CLI builds its
# parser (and so imports this module) on every start, `serve` included.

#: The Strimzi ``Kafka`` resource the topics and users belong to (deploy/base/kafka).
CLUSTER = "prodigy"
#: Where the generated manifests are committed, relative to the repository root.
TOPICS_PATH = Path("deploy/base/kafka/topics.yaml")
USERS_PATH = Path("deploy/base/kafka/users.yaml")

# Production defaults; the dev overlay patches both down to 1 (one broker).
DEFAULT_REPLICAS = 3
DEFAULT_MIN_INSYNC_REPLICAS = 2
DLQ_PARTITIONS = 1  # as runtime.kafka_admin creates them: order does not matter there

PART_OF = "prodigy-users"
_OPS_ORDER = ("Read", "Write", "Describe")


def kafka_user_name(service: str) -> str:
    """The ``KafkaUser`` (and SASL user name, and Strimzi Secret) of a service."""
    return f"prodigy-{service}"


def consumer_group(service: str, prefix: str | None = None) -> str:
    """The consumer group a service's consumers join (see runtime/consumer.py)."""
    if prefix is None:
        from prodigy_users.runtime.settings import ServiceSettings

        prefix = str(ServiceSettings.model_fields["consumer_group_prefix"].default)
    return f"{prefix}.{service}"


def resource_name(topic_name: str) -> str:
    """A Kubernetes name for a topic: dots become dashes (``a.b.v1.dlq`` -> ``a-b-v1-dlq``)."""
    return topic_name.replace(".", "-").replace("_", "-").lower()


def _topic(
    name: str,
    *,
    cluster: str,
    partitions: int,
    replicas: int,
    config: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {
            "name": resource_name(name),
            "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": PART_OF}
            | labels,
            "annotations": annotations,
        },
        "spec": {
            "topicName": name,
            "partitions": partitions,
            "replicas": replicas,
            "config": config,
        },
    }


def _registry() -> tuple[Topic, ...]:
    from prodigy_users.contracts.topics import TOPICS

    return TOPICS


def topic_manifests(
    topics: Iterable[Topic] | None = None,
    *,
    cluster: str = CLUSTER,
    replicas: int = DEFAULT_REPLICAS,
    min_insync_replicas: int = DEFAULT_MIN_INSYNC_REPLICAS,
) -> list[dict[str, Any]]:
    """One ``KafkaTopic`` per registry topic and one per dead-letter topic."""
    out: list[dict[str, Any]] = []
    for t in _registry() if topics is None else topics:
        config: dict[str, Any] = {
            "cleanup.policy": t.cleanup_policy,
            "retention.ms": t.retention_ms,
            "min.insync.replicas": min_insync_replicas,
        }
        config.update(t.extra)
        labels = {"prodigy-users/owner": t.owner}
        if t.private:
            labels["prodigy-users/private"] = "true"
        out.append(
            _topic(
                t.name,
                cluster=cluster,
                partitions=t.partitions,
                replicas=replicas,
                config=config,
                labels=labels,
                annotations={
                    "prodigy-users/description": t.description,
                    "prodigy-users/key": t.key,
                    "prodigy-users/consumers": ",".join(t.consumers) or "-",
                },
            )
        )
        out.append(
            _topic(
                t.dlq,
                cluster=cluster,
                partitions=DLQ_PARTITIONS,
                replicas=replicas,
                config={
                    "cleanup.policy": "delete",
                    "retention.ms": t.dlq_retention_ms,
                    "min.insync.replicas": min_insync_replicas,
                },
                labels={"prodigy-users/dead-letter-for": resource_name(t.name)},
                annotations={
                    "prodigy-users/description": f"Messages of {t.name} a consumer could not "
                    "apply, with the reason in the x-dlq-reason header.",
                },
            )
        )
    return out


def topic_operations(service: str, topics: Iterable[Topic] | None = None) -> dict[str, list[str]]:
    """Topic name -> the operations a service may perform on it.

    It writes the topics it owns, reads the ones it consumes and writes their
    dead-letter topics (a consumer dead-letters what it cannot apply). Every
    other registry topic gets ``Describe`` only: the runtime lists the topics
    when it starts (``kafka_admin.ensure_topics``), and a topic it cannot see
    is one it would try to create. Describe reveals metadata, never records.
    """
    ops: dict[str, set[str]] = {}
    for t in _registry() if topics is None else topics:
        ops.setdefault(t.name, set()).add("Describe")
        ops.setdefault(t.dlq, set()).add("Describe")
        if t.owner == service:
            ops[t.name].add("Write")
        if service in t.consumers:
            ops[t.name].add("Read")
            ops[t.dlq].add("Write")
    return {name: [op for op in _OPS_ORDER if op in wanted] for name, wanted in ops.items()}


def user_manifests(
    topics: Sequence[Topic] | None = None,
    services: Iterable[str] = SERVICES,
    *,
    cluster: str = CLUSTER,
    group_prefix: str | None = None,
) -> list[dict[str, Any]]:
    """One ``KafkaUser`` per service (SCRAM-SHA-512) with ACLs from the registry."""
    topics = _registry() if topics is None else topics
    out: list[dict[str, Any]] = []
    for service in services:
        acls: list[dict[str, Any]] = [
            {
                "resource": {"type": "topic", "name": name, "patternType": "literal"},
                "operations": operations,
                "host": "*",
            }
            for name, operations in topic_operations(service, topics).items()
        ]
        if any(service in t.consumers for t in topics):
            acls.append(
                {
                    "resource": {
                        "type": "group",
                        "name": consumer_group(service, group_prefix),
                        "patternType": "literal",
                    },
                    "operations": ["Read"],
                    "host": "*",
                }
            )
        out.append(
            {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "KafkaUser",
                "metadata": {
                    "name": kafka_user_name(service),
                    "labels": {
                        "strimzi.io/cluster": cluster,
                        "app.kubernetes.io/part-of": PART_OF,
                        "prodigy-users/service": service,
                    },
                },
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {"type": "simple", "acls": acls},
                },
            }
        )
    return out


# ---- a small, deterministic YAML emitter ----------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
# Words YAML 1.1 readers (kubectl's among them) take for booleans or null.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _RESERVED:
            return value
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML string
    if value is None:
        return "null"
    raise TypeError(f"cannot write {type(value).__name__} as YAML: {value!r}")


def _key(key: str) -> str:
    return key if _PLAIN.match(key) and key.lower() not in _RESERVED else json.dumps(key)


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, Mapping | list) and v:
                lines.append(f"{pad}{_key(k)}:")
                _emit(v, indent + 2, lines)
            else:
                lines.append(f"{pad}{_key(k)}: {_inline(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                lines.append(f"{pad}- {sub[0][indent + 2 :]}")
                lines.extend(sub[1:])
            elif isinstance(item, list) and item:
                raise TypeError("nested lists are not needed here")
            else:
                lines.append(f"{pad}- {_inline(item)}")
    else:
        raise TypeError(f"expected a mapping or a list, got {value!r}")


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(documents: Iterable[Mapping[str, Any]], header: str = "") -> str:
    """Documents as one multi-document YAML stream, each starting with ``---``."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for doc in documents:
        lines.append("---")
        _emit(doc, 0, lines)
    return "\n".join(lines) + "\n"


_HEADER = (
    "Generated by `prodigy-users deploy {what}` from contracts/topics.py. Do not edit:\n"
    "change the registry and run `prodigy-users deploy {what} --output {path}`.\n"
    "tests/deploy fails while this file and the registry disagree."
)


def render_topics() -> str:
    """The committed ``deploy/base/kafka/topics.yaml``."""
    header = _HEADER.format(what="topics", path=TOPICS_PATH)
    return to_yaml(topic_manifests(), header)


def render_users() -> str:
    """The committed ``deploy/base/kafka/users.yaml``."""
    header = _HEADER.format(what="users", path=USERS_PATH)
    return to_yaml(user_manifests(), header)


# ---- the `deploy` subcommand ------------------------------------------------------


def _secret_commands(paths: Mapping[str, Path]) -> list[str]:
    """kubectl commands that load generated key files into the cluster (see deploy/README)."""
    ns = '-n "$NAMESPACE"'
    out = []
    if "signing_key" in paths:
        out.append(
            f"kubectl {ns} create secret generic prodigy-signing-key "
            f"--from-file=signing.pem={paths['signing_key']}"
        )
    if "seal_private" in paths:
        out.append(
            f"kubectl {ns} create secret generic prodigy-seal-key "
            f"--from-file=seal.pem={paths['seal_private']}"
        )
    if "identity_seal_private" in paths:
        out.append(
            f"kubectl {ns} create secret generic prodigy-identity-seal-key "
            f"--from-file=identity-seal.pem={paths['identity_seal_private']}"
        )
    if "links" in paths:
        out.append(
            f"kubectl {ns} create secret generic prodigy-link-secret "
            f"--from-file=links.key={paths['links']}"
        )
    if "console" in paths:
        out.append(
            f"kubectl {ns} create secret generic prodigy-console-secret "
            f"--from-file=console.key={paths['console']}"
        )
    if "jwks" in paths and "seal_public" in paths and "identity_seal_public" in paths:
        out.append(
            f"kubectl {ns} create configmap prodigy-public-keys "
            f"--from-file=jwks.json={paths['jwks']} "
            f"--from-file=seal.pub.pem={paths['seal_public']} "
            f"--from-file=identity-seal.pub.pem={paths['identity_seal_public']}"
        )
    return out


def main_deploy(what: str, output: Path | None, *, check: bool, keys_dir: Path) -> int:
    """Run ``prodigy-users deploy WHAT``; the exit code."""
    if what == "keys":
        from prodigy_users.console.secret import SECRET_FILE, ensure_secret
        from prodigy_users.runtime.keys import generate_keys

        paths = {k: p for k, p in generate_keys(keys_dir).items() if p.exists()}
        paths["console"] = ensure_secret(keys_dir / SECRET_FILE)
        for name, path in sorted(paths.items()):
            print(f"{name}: {path}")
        print("\n# Load them into the namespace (then keep the private files offline):")
        for line in _secret_commands(paths):
            print(line)
        return 0
    text = {"topics": render_topics, "users": render_users}[what]()
    if check:
        target = output or (TOPICS_PATH if what == "topics" else USERS_PATH)
        current = target.read_text() if target.exists() else None
        if current != text:
            print(
                f"{target} is stale: run `prodigy-users deploy {what} --output {target}`",
                file=sys.stderr,
            )
            return 1
        print(f"{target} is up to date")
        return 0
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        print(f"wrote {output}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``prodigy-users deploy``."""
    p.add_argument(
        "what",
        choices=["topics", "users", "keys"],
        help="topics: KafkaTopic manifests; users: KafkaUser manifests with ACLs; "
        "keys: create the key files the cluster's Secrets hold (deploy/README.md)",
    )
    p.add_argument("--output", "-o", type=Path, default=None, help="write here instead of stdout")
    p.add_argument(
        "--check",
        action="store_true",
        help=f"only compare with --output (default {TOPICS_PATH} / {USERS_PATH}); exit 1 if stale",
    )
    p.add_argument(
        "--dir", type=Path, default=Path("prodigy-keys"), help="keys: where to write them"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``prodigy-users deploy`` with parsed arguments."""
    return main_deploy(args.what, args.output, check=args.check, keys_dir=args.dir)
