"""Rendering and reading the Kubernetes manifests under deploy/ (helpers for tests/deploy)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = ("dev", "production")
FIXTURES = Path(__file__).resolve().parent / "fixtures"
JOBS = sorted((DEPLOY / "jobs").glob("*.yaml"))

Obj = dict[str, Any]

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
POD_TEMPLATE_KINDS = (*WORKLOAD_KINDS, "Job", "CronJob", "Pod")


def kubectl() -> str:
    """The kubectl binary (its built-in kustomize renders the overlays)."""
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl is needed to render deploy/ (kubectl kustomize)")
    return found


@functools.cache
def _render(directory: str) -> tuple[str, ...]:
    out = subprocess.run(
        [kubectl(), "kustomize", directory],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return (out,)


def render(overlay: str) -> list[Obj]:
    """Every object ``kubectl kustomize deploy/overlays/<overlay>`` produces (fresh copies)."""
    (text,) = _render(str(DEPLOY / "overlays" / overlay))
    return [d for d in yaml.safe_load_all(text) if d]


def load(path: Path) -> list[Obj]:
    """The objects of a YAML file (multi-document)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def name_of(obj: Obj) -> str:
    """``Kind/name`` for messages."""
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec inside a workload, a Job or a CronJob (None for other kinds)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    result: Obj | None = None
    if kind == "Pod":
        result = spec
    elif kind == "CronJob":
        result = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    elif kind in POD_TEMPLATE_KINDS:
        result = spec.get("template", {}).get("spec")
    return result


def pod_labels(obj: Obj) -> dict[str, str]:
    """The labels the pods of a workload get."""
    labels: dict[str, str] = (
        obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    )
    return labels


def containers(pod: Obj, *, init: bool = True) -> Iterator[tuple[str, Obj]]:
    """``(role, container)`` for every container of a pod spec; role is 'container' or 'init'."""
    for c in pod.get("containers", []):
        yield "container", c
    if init:
        for c in pod.get("initContainers", []):
            yield "init", c


def mounted_files(pod: Obj, container: Obj) -> set[str]:
    """Absolute paths of the files a container sees from its Secret/ConfigMap volumes.

    Only volumes that list their ``items`` count: a file a setting points at must
    be named in the manifest, not merely hoped for in a Secret.
    """
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    files: set[str] = set()
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        sources: list[Obj] = []
        for kind in ("secret", "configMap"):
            if kind in volume:
                sources.append(volume[kind])
        for source in volume.get("projected", {}).get("sources", []):
            sources.extend(source[k] for k in ("secret", "configMap") if k in source)
        base = mount["mountPath"].rstrip("/")
        if "subPath" in mount:
            continue
        for source in sources:
            for item in source.get("items", []):
                files.add(f"{base}/{item['path']}")
    return files
