"""What makes dev small and production resilient."""

from __future__ import annotations

import pytest

from prodigy_users.contracts.topics import TOPICS

from .manifests import OVERLAYS, Obj, pod_labels, render

NAMESPACES = {"dev": "prodigy-users-dev", "production": "prodigy-users"}
CLUSTER_SCOPED = {"Namespace"}


def _kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_overlay_namespace(overlay: str) -> None:
    objects = render(overlay)
    (namespace,) = _kind(objects, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACES[overlay]
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == NAMESPACES[overlay], obj["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_come_from_the_overlay(overlay: str) -> None:
    for deployment in _kind(render(overlay), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["image"] == "registry.example.org/prodigy-users:0.1.0"


def test_dev_is_one_of_everything() -> None:
    objects = render("dev")
    for deployment in _kind(objects, "Deployment"):
        assert deployment["spec"]["replicas"] == 1
    assert [p["spec"]["replicas"] for p in _kind(objects, "KafkaNodePool")] == [1]
    (kafka,) = _kind(objects, "Kafka")
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == config["min.insync.replicas"] == 1
    for topic in _kind(objects, "KafkaTopic"):
        assert topic["spec"]["replicas"] == topic["spec"]["config"]["min.insync.replicas"] == 1
    for cluster in _kind(objects, "Cluster"):
        assert cluster["spec"]["instances"] == 1
        assert cluster["spec"]["enablePDB"] is False
    assert not _kind(objects, "HorizontalPodAutoscaler")
    assert not _kind(objects, "PodDisruptionBudget")


def test_production_is_replicated_and_spread() -> None:
    objects = render("production")
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in _kind(objects, "HorizontalPodAutoscaler")
    }
    pdbs = _kind(objects, "PodDisruptionBudget")
    most_partitions = max(t.partitions for t in TOPICS)
    for deployment in _kind(objects, "Deployment"):
        name, labels = deployment["metadata"]["name"], pod_labels(deployment)
        # The autoscaler owns the replica count.
        assert "replicas" not in deployment["spec"]
        assert hpas[name]["spec"]["minReplicas"] >= 2
        assert hpas[name]["spec"]["maxReplicas"] <= most_partitions
        assert any(
            p["spec"]["selector"]["matchLabels"].items() <= labels.items()
            and p["spec"]["maxUnavailable"] == 1
            for p in pdbs
        ), name
        pod = deployment["spec"]["template"]["spec"]
        (term,) = pod["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == {
            k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of")
        }
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert [p["spec"]["replicas"] for p in _kind(objects, "KafkaNodePool")] == [3]
    (kafka,) = _kind(objects, "Kafka")
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] == 3
    for topic in _kind(objects, "KafkaTopic"):
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    for cluster in _kind(objects, "Cluster"):
        assert cluster["spec"]["instances"] == 3
        assert cluster["spec"]["affinity"]["enablePodAntiAffinity"] is True
