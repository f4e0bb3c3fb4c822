"""Schema validation of Kubernetes objects, offline.

Built-in kinds: the ``kubernetes-validate`` package (it bundles the Kubernetes
OpenAPI schemas per version; strict mode rejects unknown fields). Strimzi and
CloudNativePG kinds: the CRD schemas vendored under deploy/schemas/, closed the
way ``kubectl apply``'s strict field validation closes them: an object with
``properties`` accepts nothing else unless it says x-kubernetes-preserve-unknown-fields.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the test extra
import kubernetes_validate  # type: ignore[import-untyped]

from .manifests import DEPLOY, Obj, name_of

#: The oldest Kubernetes the manifests support (deploy/README.md) and the newest
#: the installed kubernetes-validate knows: every object must pass both.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())

SCHEMAS = DEPLOY / "schemas"


def _close(schema: Any) -> Any:
    """A copy of ``schema`` in which objects with ``properties`` reject other keys."""
    if isinstance(schema, list):
        return [_close(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _close(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema_path(api_version: str, kind: str) -> str:
    """File name of the vendored schema for a custom resource."""
    group, _, version = api_version.partition("/")
    return f"{group}_{version}_{kind.lower()}.json"


@functools.cache
def _crd_validator(filename: str) -> jsonschema.protocols.Validator:
    path = SCHEMAS / filename
    schema = _close(json.loads(path.read_text()))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def is_custom(api_version: str) -> bool:
    """Whether an apiVersion belongs to a CRD rather than to Kubernetes itself."""
    group = api_version.partition("/")[0] if "/" in api_version else ""
    return "." in group and not group.endswith(".k8s.io")


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def metadata_errors(obj: Obj) -> list[str]:
    """Name and label syntax (what the API server checks for every kind)."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    out = []
    if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        out.append(f"{name_of(obj)}: name {name!r} is not a DNS subdomain")
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, label = str(key).rpartition("/")
        if prefix and not _DNS_SUBDOMAIN.match(prefix):
            out.append(f"{name_of(obj)}: label key prefix {prefix!r} is invalid")
        if not label or len(label) > 63 or not _LABEL_NAME.match(label):
            out.append(f"{name_of(obj)}: label key {key!r} is invalid")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_NAME.match(value):
            out.append(f"{name_of(obj)}: label {key}={value!r} has an invalid value")
    return out


def validation_errors(obj: Obj) -> list[str]:
    """Everything wrong with one object (empty: valid for every version we support)."""
    errors = metadata_errors(obj)
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    if is_custom(api_version):
        filename = crd_schema_path(api_version, kind)
        if not (SCHEMAS / filename).exists():
            return [*errors, f"{name_of(obj)}: no vendored schema deploy/schemas/{filename}"]
        for e in _crd_validator(filename).iter_errors(obj):
            path = ".".join(str(p) for p in e.absolute_path)
            errors.append(f"{name_of(obj)} at {path or '(root)'}: {e.message}")
        return errors
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{name_of(obj)} (Kubernetes {version}) at {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{name_of(obj)}: {e.message}")
    return errors
