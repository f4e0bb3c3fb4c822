"""Every object we deploy validates against its schema, and the validators do reject."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import pytest

from .manifests import FIXTURES, JOBS, OVERLAYS, Obj, load, name_of, render
from .schemas import SCHEMAS, is_custom, validation_errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay: str) -> None:
    errors = [e for obj in render(overlay) for e in validation_errors(obj)]
    assert errors == []


@pytest.mark.parametrize("path", [*JOBS, FIXTURES / "good.yaml"], ids=lambda p: p.name)
def test_jobs_and_fixtures_validate(path: Path) -> None:
    errors = [e for obj in load(path) for e in validation_errors(obj)]
    assert errors == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_custom_kind_has_a_vendored_schema(overlay: str) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in render(overlay) if is_custom(o["apiVersion"])}
    assert kinds == {
        ("kafka.strimzi.io/v1", "Kafka"),
        ("kafka.strimzi.io/v1", "KafkaNodePool"),
        ("kafka.strimzi.io/v1", "KafkaTopic"),
        ("kafka.strimzi.io/v1", "KafkaUser"),
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    }


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_vendored_schemas_are_json_schemas(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$comment"].startswith("Subset of the openAPIV3Schema")
    (gvk,) = schema["x-kubernetes-group-version-kind"]
    assert path.name == f"{gvk['group']}_{gvk['version']}_{gvk['kind'].lower()}.json"


def _one(overlay: str, kind: str) -> Obj:
    return copy.deepcopy(next(o for o in render(overlay) if o["kind"] == kind))


def _set(obj: Obj, path: str, value: Any) -> Obj:
    *parents, last = path.split(".")
    node: Any = obj
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return obj


_DELETE = object()

BROKEN = [
    # Kubernetes' own kinds, strict: a misspelt field is an error, not a no-op.
    ("Deployment", "spec.template.spec.containers.0.readinesProbe", {}, "readinesProbe"),
    ("Deployment", "spec.replicas", "three", "is not of type"),
    ("Service", "spec.ports.0.port", "http", "is not of type"),
    ("NetworkPolicy", "spec.policyTypes", "Ingress", "is not of type"),
    # The vendored CRD schemas.
    ("KafkaTopic", "spec.partitions", 0, "less than the minimum"),
    ("KafkaTopic", "spec.replication", 3, "Additional properties"),
    ("KafkaUser", "spec.authorization.acls.0.operations", ["Publish"], "is not one of"),
    ("KafkaUser", "spec.authorization.acls.0.operation", "Read", "Additional properties"),
    ("Kafka", "spec.kafka.listeners.0.name", "tls-listener-1", "does not match"),
    ("Kafka", "spec.kafka.listeners.0.tls", _DELETE, "'tls' is a required property"),
    ("KafkaNodePool", "spec.roles", ["broker", "zookeeper"], "is not one of"),
    ("Cluster", "spec.instances", _DELETE, "'instances' is a required property"),
    ("Cluster", "spec.primaryUpdateStrategy", "automatic", "is not one of"),
    ("Cluster", "metadata.name", "Identity_DB", "not a DNS subdomain"),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"), BROKEN, ids=[f"{b[0]}:{b[1]}" for b in BROKEN]
)
def test_validation_rejects_a_broken_object(
    kind: str, path: str, value: Any, expected: str
) -> None:
    obj = _set(_one("production", kind), path, value)
    errors = validation_errors(obj)
    assert errors, f"{name_of(obj)} with {path}={value!r} passed"
    assert any(expected in e for e in errors), errors


def test_an_unknown_custom_kind_is_an_error() -> None:
    obj = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validation_errors(obj) == [
        "Widget/w: no vendored schema deploy/schemas/example.org_v1_widget.json"
    ]
