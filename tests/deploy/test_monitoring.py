"""Monitoring and tracing manifests: Prometheus scrapes every service, the alerts use
series the code exports, every alert is documented, tracing is opt-in and wired."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodigy_users.notifications.domain import EmailStatus
from prodigy_users.runtime.metrics import Metrics
from prodigy_users.runtime.service import ServiceSpec, build_app
from prodigy_users.runtime.settings import ServiceSettings
from prodigy_users.runtime.tracing import tracing_wanted
from prodigy_users.stack import SERVICES

from . import policy
from .manifests import DEPLOY, OVERLAYS, Obj, kubectl, name_of, pod_labels, render
from .promql import PromQLError, read
from .schemas import validation_errors

#: Labels Prometheus puts on every target a ServiceMonitor finds.
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod", "container", "endpoint"}
#: Series from elsewhere: Prometheus itself and kube-state-metrics (kube-prometheus-stack).
EXTERNAL = {
    "up": set(),
    "kube_deployment_status_replicas_unavailable": {"deployment"},
    "kube_pod_container_status_restarts_total": {"pod", "container"},
    "kube_pod_init_container_status_restarts_total": {"pod", "container"},
}
JOB = "prodigy-users"


def _kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    """A label selector with matchLabels and In/NotIn/Exists expressions."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        value, op = labels.get(e["key"]), e["operator"]
        ok = {
            "In": value in e.get("values", []),
            "NotIn": value not in e.get("values", []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[op]
        if not ok:
            return False
    return bool(selector)


def exported_series() -> dict[str, set[str]]:
    """Every series name the runtime's /metrics can show, with its labels."""
    metrics = Metrics("any")
    out: dict[str, set[str]] = {}
    for wrapper in vars(metrics).values():
        describe = getattr(wrapper, "describe", None)
        if describe is None:
            continue
        [family] = describe()
        labels = set(wrapper._labelnames)
        suffixes = {
            "counter": ["_total"],
            "gauge": [""],
            "histogram": ["_bucket", "_count", "_sum"],
        }
        for suffix in suffixes[family.type]:
            out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def alerts(objects: list[Obj]) -> list[Obj]:
    [rule] = _kind(objects, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


# -- scraping ------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_every_service_at_metrics(overlay: str) -> None:
    objects = render(overlay)
    [monitor] = _kind(objects, "ServiceMonitor")
    spec = monitor["spec"]
    services = {o["metadata"]["name"]: o for o in _kind(objects, "Service")}
    scraped = {
        n for n, s in services.items() if _selects(spec["selector"], s["metadata"]["labels"])
    }
    # Exactly ours: Strimzi's and CloudNativePG's Services carry our part-of label too.
    assert scraped == set(SERVICES)
    [endpoint] = spec["endpoints"]
    assert endpoint["path"] == "/metrics"
    for name in SERVICES:
        assert endpoint["port"] in {p["name"] for p in services[name]["spec"]["ports"]}
    # The rules select on the job label the Services' part-of label becomes.
    assert spec["jobLabel"] == "app.kubernetes.io/part-of"
    for name in SERVICES:
        assert services[name]["metadata"]["labels"][spec["jobLabel"]] == JOB


def test_the_runtime_serves_metrics_where_the_monitor_looks() -> None:
    [monitor] = _kind(render("production"), "ServiceMonitor")
    path = monitor["spec"]["endpoints"][0]["path"]
    app = build_app(ServiceSpec(name="x", settings=ServiceSettings(), title="x", description="x"))
    assert path in {getattr(r, "path", None) for r in app.routes}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_prometheus_reach_the_http_port_only(overlay: str) -> None:
    objects = render(overlay)
    prometheus_ns, prometheus_pod = (
        {"kubernetes.io/metadata.name": "monitoring"},
        {"app.kubernetes.io/name": "prometheus"},
    )
    policies = _kind(objects, "NetworkPolicy")
    for deployment in _kind(objects, "Deployment"):
        labels = pod_labels(deployment)
        # The console serves no /metrics: Prometheus has no business with it.
        wanted = {"http"} if deployment["metadata"]["name"] in SERVICES else set()
        admitted: set[str] = set()
        for p in policies:
            if not _selects(p["spec"]["podSelector"], labels):
                continue
            for rule in p["spec"].get("ingress") or []:
                for peer in rule.get("from") or []:
                    if _selects(peer.get("namespaceSelector") or {}, prometheus_ns) and _selects(
                        peer.get("podSelector") or {}, prometheus_pod
                    ):
                        admitted |= {str(port["port"]) for port in rule.get("ports", [])}
        assert admitted == wanted, name_of(deployment)
    assert policy.network_policies(objects) == []


# -- the alert rules -----------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alert_expressions_read_and_use_series_the_code_exports(overlay: str) -> None:
    ours = exported_series()
    for rule in alerts(render(overlay)):
        name = rule["alert"]
        expr = read(rule["expr"])
        used: set[str] = set()
        for metric in expr.metrics:
            if metric.startswith("prodigy_"):
                assert metric in ours, f"{name}: the runtime exports no {metric}"
                used |= ours[metric]
            else:
                assert metric in EXTERNAL, f"{name}: where does {metric} come from?"
                used |= EXTERNAL[metric]
        for metric, label, op, value in expr.matchers:
            known = ours.get(metric, EXTERNAL.get(metric, set())) | TARGET_LABELS
            assert label in known, f"{name}: {metric} has no label {label}"
            if label == "job":
                assert (op, value) == ("=", JOB), name
            if metric == "prodigy_emails_total" and label == "status":
                statuses = set(typing.get_args(EmailStatus))
                assert set(value.split("|")) <= statuses, f"{name}: status {value}"
        assert expr.grouping <= used | TARGET_LABELS, f"{name}: {expr.grouping - used}"
        # Our own series only from our own targets: job= on every selector of them.
        for metric in expr.metrics & (set(ours) | {"up"}):
            assert (metric, "job") in {(m, lbl) for m, lbl, _, _ in expr.matchers}, name


def test_the_alerts_cover_what_operators_must_hear_about() -> None:
    used = {m for rule in alerts(render("production")) for m in read(rule["expr"]).metrics}
    for series in (
        "prodigy_outbox_oldest_age_seconds",  # relay not publishing
        "prodigy_consumer_lag",  # consumers behind or stuck
        "prodigy_events_consumed_total",  # ... making no progress
        "prodigy_dead_letters_total",  # messages set aside
        "prodigy_emails_total",  # emails failing
        "prodigy_http_request_duration_seconds_count",  # 5xx
        "up",  # targets down
        "kube_deployment_status_replicas_unavailable",  # pods not ready
        "kube_pod_container_status_restarts_total",  # pods restarting
    ):
        assert series in used, series


def test_every_alert_is_named_labelled_and_explained() -> None:
    rules = alerts(render("production"))
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert re.fullmatch(r"Prodigy[A-Z][A-Za-z0-9]+", rule["alert"])
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def _readme_alerts() -> dict[str, str]:
    """The rows of deploy/README.md's alert table: name -> severity."""
    text = (DEPLOY / "README.md").read_text()
    section = text.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(Prodigy\w+)` \| (warning|critical) \|", section, re.M))


def test_every_alert_is_in_the_operators_guide_with_its_severity() -> None:
    documented = _readme_alerts()
    assert documented == {r["alert"]: r["labels"]["severity"] for r in alerts(render("dev"))}


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(x[5m])", "unclosed"),
        ("sum(rate(x[5m])))", "unbalanced"),
        ("rates(x[5m])", "unknown function rates"),
        ("rate(x[5 minutes])", "bad range"),
        ('x{job="a",status "5.."}', "bad label matcher"),
        ("x = 1", "'=' outside a label matcher"),
        ("sum by namespace (x)", "needs a label list"),
        ("x # y", "unexpected"),
    ],
)
def test_the_expression_reader_rejects_bad_promql(expr: str, problem: str) -> None:
    with pytest.raises(PromQLError, match=problem):
        read(expr)


# -- schemas of the new kinds, shown to reject ---------------------------------

_DELETE = object()

BROKEN: list[tuple[str, list[Any], Any, str]] = [
    ("ServiceMonitor", ["spec", "endpoints", 0, "interval"], "30 seconds", "does not match"),
    ("ServiceMonitor", ["spec", "endpoints", 0, "portName"], "http", "Additional properties"),
    ("ServiceMonitor", ["spec", "selector"], _DELETE, "'selector' is a required property"),
    ("PrometheusRule", ["spec", "groups", 0, "rules", 0, "for"], "5 minutes", "does not match"),
    ("PrometheusRule", ["spec", "groups", 0, "rules", 0, "expr"], _DELETE, "'expr' is a required"),
    ("PrometheusRule", ["spec", "groups", 0, "rules", 0, "severity"], "x", "Additional properties"),
    ("PrometheusRule", ["spec", "groups", 0, "name"], "", "should be non-empty"),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"), BROKEN, ids=[f"{b[0]}:{b[1][-1]}" for b in BROKEN]
)
def test_validation_rejects_a_broken_monitoring_object(
    kind: str, path: list[Any], value: Any, expected: str
) -> None:
    [obj] = copy.deepcopy(_kind(render("production"), kind))
    node: Any = obj
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    errors = validation_errors(obj)
    assert any(expected in e for e in errors), errors


# -- tracing -------------------------------------------------------------------


def _config(objects: list[Obj]) -> dict[str, str]:
    [config] = [
        o for o in _kind(objects, "ConfigMap") if o["metadata"]["name"].startswith("prodigy-config")
    ]
    data: dict[str, str] = config["data"]
    return data


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tracing_is_off_unless_an_overlay_opts_in(overlay: str) -> None:
    assert not tracing_wanted(_config(render(overlay)))


def test_the_tracing_component_turns_tracing_on_and_lets_spans_out(tmp_path: Path) -> None:
    # As deploy/README.md says: add the component to an overlay's components.
    copy_ = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_)
    overlay = copy_ / "overlays" / "production" / "kustomization.yaml"
    kustomization = yaml.safe_load(overlay.read_text())
    kustomization["components"].append("../../components/tracing")
    overlay.write_text(yaml.safe_dump(kustomization))
    rendered = subprocess.run(
        [kubectl(), "kustomize", str(overlay.parent)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]

    config = _config(objects)
    assert tracing_wanted(config)
    assert config["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert 0 < float(config["OTEL_TRACES_SAMPLER_ARG"]) <= 1
    # Every service reads the ConfigMap, and may reach the collector's OTLP/HTTP port.
    [export] = [
        p for p in _kind(objects, "NetworkPolicy") if p["metadata"]["name"] == "otel-export"
    ]
    assert export["metadata"]["namespace"] == "prodigy-users"
    for deployment in _kind(objects, "Deployment"):
        if deployment["metadata"]["name"] not in SERVICES:
            continue  # the console exports no spans
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        refs = {s["configMapRef"]["name"] for s in container.get("envFrom", [])}
        assert any(r.startswith("prodigy-config") for r in refs), name_of(deployment)
        assert _selects(export["spec"]["podSelector"], pod_labels(deployment))
    assert [p["port"] for rule in export["spec"]["egress"] for p in rule["ports"]] == [4318]
    assert [e for o in objects for e in validation_errors(o)] == []
    for check in policy.CHECKS.values():
        assert check(objects) == []
