"""Our own policy checks on Kubernetes objects.

Each check takes a list of objects and returns the violations as sentences
(empty: the objects comply). test_policies.py runs them on the rendered
overlays and the Jobs, and shows each one failing on a bad fixture.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prodigy_users.contracts.topics import Topic

from .manifests import WORKLOAD_KINDS, Obj, containers, name_of, pod_labels, pod_spec

Check = Callable[[Sequence[Obj]], list[str]]


def _where(obj: Obj, role: str, container: Obj) -> str:
    return f"{name_of(obj)} {role} {container.get('name')!r}"


def probes(objects: Sequence[Obj]) -> list[str]:
    """Every container of a long-running workload has a liveness and a readiness probe.

    Init containers and Jobs run to completion: Kubernetes allows them no probes.
    """
    out = []
    for obj in objects:
        pod = pod_spec(obj)
        if pod is None or obj.get("kind") not in WORKLOAD_KINDS:
            continue
        for role, c in containers(pod, init=False):
            for probe in ("livenessProbe", "readinessProbe"):
                if not c.get(probe):
                    out.append(f"{_where(obj, role, c)} has no {probe}")
    return out


def resources(objects: Sequence[Obj]) -> list[str]:
    """Every container, init containers included, requests and limits CPU and memory."""
    out = []
    for obj in objects:
        pod = pod_spec(obj)
        if pod is None:
            continue
        for role, c in containers(pod):
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (res.get(kind) or {}):
                        out.append(f"{_where(obj, role, c)} has no {kind}.{resource}")
    return out


def security(objects: Sequence[Obj]) -> list[str]:
    """The restricted security context, as Kubernetes evaluates it for each container.

    Non-root (the container's setting, else the pod's), no privilege escalation,
    read-only root filesystem, every capability dropped, and a seccomp profile.
    """
    out = []
    for obj in objects:
        pod = pod_spec(obj)
        if pod is None:
            continue
        pod_sc = pod.get("securityContext") or {}
        for role, c in containers(pod):
            sc = c.get("securityContext") or {}
            where = _where(obj, role, c)
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            if non_root is not True:
                out.append(f"{where} may run as root (runAsNonRoot is not true)")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                out.append(f"{where} runs as user 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{where} does not set allowPrivilegeEscalation: false")
            if sc.get("privileged"):
                out.append(f"{where} is privileged")
            if sc.get("readOnlyRootFilesystem") is not True:
                out.append(f"{where} does not set readOnlyRootFilesystem: true")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                out.append(f"{where} does not drop ALL capabilities")
            if caps.get("add"):
                out.append(f"{where} adds capabilities {caps['add']}")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile")) or {}
            if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
                out.append(f"{where} has no RuntimeDefault seccomp profile")
    return out


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_reference_problem(image: str) -> str | None:
    """Why an image reference is not pinned (None: pinned by digest or by a version tag)."""
    if _DIGEST.search(image):
        return None
    if "@" in image:
        return "has a malformed digest"
    last = image.rsplit("/", 1)[-1]  # a registry's :port is before the last slash
    if ":" not in last:
        return "has no tag or digest"
    tag = last.split(":", 1)[1]
    if tag in ("", "latest"):
        return f"uses the moving tag {tag!r}"
    return None


def images(objects: Sequence[Obj]) -> list[str]:
    """Every image is pinned by a tag (never ``latest``) or a digest."""
    out = []
    for obj in objects:
        pod = pod_spec(obj)
        if pod is not None:
            for role, c in containers(pod):
                problem = image_reference_problem(str(c.get("image", "")))
                if problem:
                    out.append(f"{_where(obj, role, c)} image {c.get('image')!r} {problem}")
        if obj.get("kind") == "Cluster" and "imageName" in obj.get("spec", {}):
            image = obj["spec"]["imageName"]
            problem = image_reference_problem(image)
            if problem:
                out.append(f"{name_of(obj)} imageName {image!r} {problem}")
    return out


def topics(objects: Sequence[Obj], registry: Iterable[Topic]) -> list[str]:
    """Every registry topic and its dead-letter topic has a KafkaTopic with its partitions."""
    declared: dict[str, Obj] = {}
    for obj in objects:
        if obj.get("kind") == "KafkaTopic":
            spec = obj.get("spec") or {}
            declared[spec.get("topicName") or obj["metadata"]["name"]] = spec
    out = []
    for t in registry:
        for name, partitions in ((t.name, t.partitions), (t.dlq, None)):
            spec = declared.get(name)
            if spec is None:
                out.append(f"topic {name} has no KafkaTopic")
            elif partitions is not None and spec.get("partitions") != partitions:
                out.append(
                    f"KafkaTopic {name} has {spec.get('partitions')} partitions, "
                    f"the registry says {partitions}"
                )
    return out


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    if selector.get("matchExpressions"):
        return False  # not used here; do not guess
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def network_policies(objects: Sequence[Obj]) -> list[str]:
    """Every workload is selected by a NetworkPolicy that restricts both directions.

    And no ingress rule of it is open to every source (a rule without ``from``).
    """
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    out = []
    for obj in objects:
        if obj.get("kind") not in WORKLOAD_KINDS:
            continue
        labels = pod_labels(obj)
        mine = [p for p in policies if _selects(p["spec"].get("podSelector") or {}, labels)]
        if not mine:
            out.append(f"{name_of(obj)} is selected by no NetworkPolicy")
            continue
        for direction in ("Ingress", "Egress"):
            if not any(direction in (p["spec"].get("policyTypes") or []) for p in mine):
                out.append(f"{name_of(obj)}: no NetworkPolicy restricts {direction.lower()}")
        for p in mine:
            for rule in p["spec"].get("ingress") or []:
                if not rule.get("from"):
                    out.append(f"{name_of(p)} lets every source reach {name_of(obj)}")
    return out


CHECKS: dict[str, Check] = {
    "probes": probes,
    "resources": resources,
    "security": security,
    "images": images,
    "network_policies": network_policies,
}
