"""Policy checks on what we deploy, and proof that each check can fail."""

from __future__ import annotations

import pytest

from prodigy_users.contracts.topics import TOPICS

from . import policy
from .manifests import FIXTURES, JOBS, OVERLAYS, Obj, load, render


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("check", sorted(policy.CHECKS))
def test_overlay_complies(overlay: str, check: str) -> None:
    assert policy.CHECKS[check](render(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_registry_topic_has_a_kafka_topic(overlay: str) -> None:
    assert policy.topics(render(overlay), TOPICS) == []


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.name)
def test_jobs_comply(job: object) -> None:
    objects = load(job)  # type: ignore[arg-type]
    for check in ("resources", "security", "images"):
        assert policy.CHECKS[check](objects) == [], check


def _fixture(name: str) -> list[Obj]:
    return load(FIXTURES / f"{name}.yaml")


def test_the_good_fixture_passes_every_check() -> None:
    objects = _fixture("good")
    for name, check in policy.CHECKS.items():
        assert check(objects) == [], name


BAD = [
    ("bad-no-liveness", "probes", "has no livenessProbe"),
    ("bad-no-readiness", "probes", "has no readinessProbe"),
    ("bad-no-limits", "resources", "init 'migrate' has no limits.cpu"),
    ("bad-no-memory-request", "resources", "has no requests.memory"),
    ("bad-root", "security", "may run as root"),
    ("bad-pod-not-nonroot", "security", "init 'migrate' may run as root"),
    ("bad-privilege-escalation", "security", "allowPrivilegeEscalation"),
    ("bad-writable-root", "security", "init 'migrate' does not set readOnlyRootFilesystem"),
    ("bad-capabilities", "security", "does not drop ALL capabilities"),
    ("bad-image-latest", "images", "uses the moving tag 'latest'"),
    ("bad-image-untagged", "images", "has no tag or digest"),
    ("bad-no-network-policy", "network_policies", "selected by no NetworkPolicy"),
    ("bad-network-policy-no-egress", "network_policies", "restricts egress"),
    ("bad-network-policy-open-ingress", "network_policies", "lets every source reach"),
]


@pytest.mark.parametrize(("fixture", "check", "expected"), BAD, ids=[b[0] for b in BAD])
def test_each_check_fails_on_its_bad_fixture(fixture: str, check: str, expected: str) -> None:
    violations = policy.CHECKS[check](_fixture(fixture))
    assert violations, f"{check} passed {fixture}.yaml"
    assert any(expected in v for v in violations), violations
    # The defect is the only one: every other check still passes the fixture.
    for other, other_check in policy.CHECKS.items():
        if other != check:
            assert other_check(_fixture(fixture)) == [], other


def test_every_check_has_a_bad_fixture() -> None:
    assert {check for _, check, _ in BAD} == set(policy.CHECKS)


def test_topic_check_fails_on_a_missing_or_wrong_topic() -> None:
    violations = policy.topics(_fixture("bad-topics"), TOPICS)
    assert "KafkaTopic identity.commands.v1 has 3 partitions, the registry says 6" in violations
    assert "topic identity.commands.v1.dlq has no KafkaTopic" in violations
    assert "topic membership.events.v1 has no KafkaTopic" in violations


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("registry.example.org/prodigy-users:0.1.0", True),
        ("registry.example.org:5000/prodigy-users:0.1.0", True),
        ("prodigy-users@sha256:" + "a" * 64, True),
        ("registry.example.org:5000/prodigy-users", False),
        ("prodigy-users:latest", False),
        ("prodigy-users", False),
        ("prodigy-users@sha256:abc", False),
    ],
)
def test_image_reference_rules(image: str, pinned: bool) -> None:
    assert (policy.image_reference_problem(image) is None) is pinned
