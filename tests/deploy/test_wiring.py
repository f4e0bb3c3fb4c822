"""The manifests agree with the code: settings names, ports, files, credentials, commands."""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

import pytest

from prodigy_users.stack import CONSOLE, SERVABLE, SERVICES
from prodigy_users.stack.cli import SUBCOMMANDS, parser
from prodigy_users.stack.deploy_gen import CLUSTER, kafka_user_name

from .manifests import JOBS, OVERLAYS, Obj, containers, load, mounted_files, pod_labels, render


def _settings(service: str) -> Any:
    return importlib.import_module(f"prodigy_users.{service}.settings").Settings


def _env_names(service: str) -> set[str]:
    return {f"PRODIGY_{name.upper()}" for name in _settings(service).model_fields}


def _deployments(objects: list[Obj]) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}


def _config_maps(objects: list[Obj]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}


def _environment(objects: list[Obj], container: Obj) -> dict[str, str]:
    """What the container's process sees (literal values; references as '<secret>')."""
    maps = _config_maps(objects)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", "<secret>")
    return env


def _main(deployment: Obj) -> Obj:
    main: Obj = deployment["spec"]["template"]["spec"]["containers"][0]
    return main


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_four_services_and_the_console_are_deployed(overlay: str) -> None:
    assert sorted(_deployments(render(overlay))) == sorted(SERVABLE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_calls_the_services_by_their_names_and_keeps_no_state(overlay: str) -> None:
    objects = render(overlay)
    console = _deployments(objects)[CONSOLE]
    pod = console["spec"]["template"]["spec"]
    assert not pod.get("initContainers"), "no database to migrate"
    env = _environment(objects, _main(console))
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    for name in SERVICES:
        (port,) = services[name]["spec"]["ports"]
        assert env[f"PRODIGY_{name.upper()}_URL"] == f"http://{name}:{port['port']}"
    assert env["PRODIGY_COOKIE_SECURE"] == "true"  # the Ingress serves HTTPS
    assert env["PRODIGY_SECRET_KEY_PATH"] in mounted_files(pod, _main(console))
    # The shared ConfigMap has Kafka's settings (ignored by it); its own env has neither.
    own = [v["name"] for v in _main(console)["env"]]
    assert not [k for k in own if "DATABASE" in k or "KAFKA" in k or k.startswith("DB_")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_the_manifests_set_exists(overlay: str) -> None:
    objects = render(overlay)
    everyone = set().union(*(_env_names(s) for s in SERVICES))
    for name, data in _config_maps(objects).items():
        unknown = {k for k in data if k.startswith("PRODIGY_")} - everyone
        assert not unknown, f"ConfigMap {name} sets settings no service has: {unknown}"
    for service, deployment in _deployments(objects).items():
        for var in _main(deployment).get("env", []):
            if var["name"].startswith("PRODIGY_"):
                assert var["name"] in _env_names(service), (service, var["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_and_probes_match_the_services(overlay: str) -> None:
    objects = render(overlay)
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    for name, deployment in _deployments(objects).items():
        port = _settings(name).model_fields["http_port"].default
        main = _main(deployment)
        assert main["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert _environment(objects, main)["PRODIGY_HTTP_PORT"] == str(port)
        assert _environment(objects, main)["PRODIGY_HTTP_HOST"] == "0.0.0.0"
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        (service_port,) = services[name]["spec"]["ports"]
        assert service_port["port"] == port
        assert services[name]["spec"]["selector"].items() <= pod_labels(deployment).items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_file_a_setting_names_is_mounted(overlay: str) -> None:
    objects = render(overlay)
    for name, deployment in _deployments(objects).items():
        pod = deployment["spec"]["template"]["spec"]
        main = _main(deployment)
        files = mounted_files(pod, main)
        wanted = _env_names(name)
        for key, value in _environment(objects, main).items():
            if key.endswith("_PATH") and key in wanted:
                assert value in files, f"{name}: {key}={value} is not a mounted file"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_uses_its_own_database_and_kafka_user(overlay: str) -> None:
    objects = render(overlay)
    clusters = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Cluster"}
    users = {o["metadata"]["name"] for o in objects if o["kind"] == "KafkaUser"}
    for name, deployment in _deployments(objects).items():
        if name == CONSOLE:
            continue  # neither a database nor Kafka (test above)
        cluster = clusters[f"{name}-db"]
        assert cluster["spec"]["bootstrap"]["initdb"] == {"database": name, "owner": name}
        for _, c in containers(deployment["spec"]["template"]["spec"]):
            env = {v["name"]: v for v in c["env"]}
            assert env["PRODIGY_DATABASE_URL"]["value"] == (
                f"postgresql+asyncpg://$(DB_USERNAME):$(DB_PASSWORD)@{name}-db-rw:5432/{name}"
            )
            for var in ("DB_USERNAME", "DB_PASSWORD"):
                assert env[var]["valueFrom"]["secretKeyRef"]["name"] == f"{name}-db-app"
        env = {v["name"]: v for v in _main(deployment)["env"]}
        user = kafka_user_name(name)
        assert user in users
        assert env["PRODIGY_KAFKA_SASL_USERNAME"]["value"] == user
        assert env["PRODIGY_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_only_what_each_service_needs(overlay: str) -> None:
    objects = render(overlay)
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    for name in SERVICES:
        spec = policies[name]["spec"]
        databases = set()
        open_ports = set()
        for rule in spec["egress"]:
            for peer in rule["to"]:
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                if "cnpg.io/cluster" in labels:
                    databases.add(labels["cnpg.io/cluster"])
                if "ipBlock" in peer:
                    open_ports |= {p["port"] for p in rule["ports"]}
        assert databases == {f"{name}-db"}, name
        assert open_ports == ({587} if name == "notifications" else set()), name
        sources = [peer for rule in spec["ingress"] for peer in rule["from"]]
        for peer in sources:
            assert peer in (
                INGRESS_CONTROLLER,
                {"podSelector": {"matchLabels": {"prodigy-users/operator-tool": "true"}}},
                CONSOLE_PODS,
            ), (name, peer)
        assert CONSOLE_PODS in sources, f"the console cannot reach {name}"
        for rule in spec["ingress"]:
            assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]


INGRESS_CONTROLLER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
}
CONSOLE_PODS = {
    "podSelector": {
        "matchLabels": {
            "app.kubernetes.io/name": "console",
            "app.kubernetes.io/part-of": "prodigy-users",
        }
    }
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_is_reached_from_the_ingress_and_reaches_only_the_services(
    overlay: str,
) -> None:
    objects = render(overlay)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    labels = pod_labels(_deployments(objects)[CONSOLE])
    mine = [
        p
        for p in policies
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and p["spec"]["podSelector"].get("matchLabels")
    ]
    assert [p["metadata"]["name"] for p in mine] == ["console"]
    spec = mine[0]["spec"]
    assert spec["ingress"] == [
        {"from": [INGRESS_CONTROLLER], "ports": [{"port": "http", "protocol": "TCP"}]}
    ]
    reached = set()
    for rule in spec["egress"]:
        for peer in rule["to"]:
            assert "ipBlock" not in peer
            selected = peer["podSelector"]["matchLabels"]
            if selected == {"k8s-app": "kube-dns"}:
                assert {p["port"] for p in rule["ports"]} == {53}
                continue
            name = selected["app.kubernetes.io/name"]
            port = _settings(name).model_fields["http_port"].default
            assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
            reached.add(name)
    assert reached == set(SERVICES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_services_reach_the_kafka_listener(overlay: str) -> None:
    objects = render(overlay)
    kafka = next(o for o in objects if o["kind"] == "Kafka")
    assert kafka["metadata"]["name"] == CLUSTER
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    (peer,) = listener["networkPolicyPeers"]
    for name, deployment in _deployments(objects).items():
        reaches = peer["podSelector"]["matchLabels"].items() <= pod_labels(deployment).items()
        assert reaches == (name in SERVICES), name  # never the console
    bootstrap = _config_maps(objects)
    (config,) = [d for n, d in bootstrap.items() if n.startswith("prodigy-config")]
    assert config["PRODIGY_KAFKA_BOOTSTRAP_SERVERS"] == f"{CLUSTER}-kafka-bootstrap:9093"
    assert config["PRODIGY_KAFKA_CREATE_TOPICS"] == "false"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_routes_to_existing_services(overlay: str) -> None:
    objects = render(overlay)
    ingresses = [o for o in objects if o["kind"] == "Ingress"]
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    hosts = set()
    routes: dict[str, str] = {}
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services
                assert backend["port"] == {"name": "http"}
                assert path["path"] not in routes, f"{path['path']} is routed twice"
                routes[path["path"]] = backend["name"]
        assert ingress["spec"]["rules"][0]["host"] == ingress["spec"]["tls"][0]["hosts"][0]
        hosts.add(ingress["spec"]["rules"][0]["host"])
    assert len(hosts) == 1, "every Ingress serves the one host"
    # The console at /: every page, among them those the emails link to; the APIs
    # keep their (longer) prefixes.
    assert routes["/"] == CONSOLE
    assert "/set-password" not in routes
    assert all(path.startswith("/v1/") for path, name in routes.items() if name != CONSOLE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_refuses_bodies_the_services_would_refuse(overlay: str) -> None:
    """64 KiB everywhere, as the services and the console (PRODIGY_MAX_BODY_BYTES);
    the department routes, which take the bulk uploads, 11m (membership, and the
    console for its own /departments pages, hold every other route of them to 64 KiB
    themselves)."""
    from prodigy_users.console.settings import Settings as ConsoleSettings
    from prodigy_users.membership.settings import Settings as MembershipSettings
    from prodigy_users.runtime.settings import ServiceSettings

    sizes = {"k": 1024, "m": 1024 * 1024}
    limits = {}
    for ingress in (o for o in render(overlay) if o["kind"] == "Ingress"):
        size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                limits[path["path"]] = int(size[:-1]) * sizes[size[-1]]
    default = ServiceSettings.model_fields["max_body_bytes"].default
    uploads = MembershipSettings.model_fields["import_max_bytes"].default
    assert limits.pop("/v1/departments") >= uploads
    console_uploads = ConsoleSettings.model_fields["upload_max_bytes"].default
    assert limits.pop("/departments") >= console_uploads
    assert set(limits.values()) == {default}


# Routes deliberately kept off the ingress (operators' calls, reached inside the cluster).
UNROUTED_PREFIXES = ("/v1/accounts",)


def _public_routes(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every ``/v1`` path of every service's OpenAPI document, with the service serving it."""
    from prodigy_users.runtime.service import build_app

    # Built from their defaults, as tests/unit/test_docs.py builds them.
    for name in list(os.environ):
        if name.startswith("PRODIGY_"):
            monkeypatch.delenv(name)
    owners: dict[str, str] = {}
    for service in SERVICES:
        spec = importlib.import_module(f"prodigy_users.{service}.app").spec()
        for path in build_app(spec).openapi()["paths"]:
            if path.startswith("/v1/") and not path.startswith(UNROUTED_PREFIXES):
                owners[path] = service
    return owners


def test_every_public_route_reaches_the_service_that_serves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefixes = {
        p["path"]: p["backend"]["service"]["name"]
        for ingress in render(OVERLAYS[0])
        if ingress["kind"] == "Ingress"
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    owners = _public_routes(monkeypatch)
    assert "/v1/me/memberships" in owners  # identity's /v1/me is a prefix of membership's
    misrouted = {}
    for path, service in owners.items():
        # Prefix matching as the ingress does it: whole path segments, the longest wins.
        matching = [p for p in prefixes if path == p or path.startswith(p.rstrip("/") + "/")]
        chosen = prefixes[max(matching, key=len)]
        if chosen != service:
            misrouted[path] = f"{chosen}, not {service}"
    assert misrouted == {}


def _parse(args: list[str]) -> argparse.Namespace:
    try:
        return parser().parse_args(args)
    except SystemExit as exit_:
        raise AssertionError(f"`prodigy-users {' '.join(args)}` is not a valid command") from exit_


def _all_containers() -> list[tuple[str, Obj, Obj]]:
    out = []
    for overlay in OVERLAYS:
        for obj in render(overlay):
            pod = obj.get("spec", {}).get("template", {}).get("spec")
            if pod:
                out += [(overlay, obj, c) for _, c in containers(pod)]
    for job in JOBS:
        for obj in load(job):
            if obj["kind"] == "Job":
                pod = obj["spec"]["template"]["spec"]
                out += [(job.name, obj, c) for _, c in containers(pod)]
    return out


def test_every_container_runs_a_command_of_the_cli() -> None:
    seen = set()
    for where, obj, c in _all_containers():
        # The image's entry point is `prodigy-users`: manifests give arguments only.
        assert "command" not in c, (where, c["name"])
        args = _parse(c["args"])
        assert args.command in SUBCOMMANDS
        seen.add(args.command)
        if args.command in ("serve", "migrate"):
            assert args.name == obj["metadata"]["name"], (where, c["name"])
    assert seen == {"serve", "migrate", "create-department", "replay"}


def _job(name: str) -> Any:
    (path,) = [j for j in JOBS if j.name == name]
    return path


def test_the_create_department_job_has_its_key_and_reaches_its_services() -> None:
    (obj,) = load(_job("create-department.yaml"))
    pod = obj["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    args = _parse(c["args"])
    files = mounted_files(pod, c)
    # The operator token is signed with this key; jwks.json next to it names the key.
    assert str(args.signing_key) in files
    assert str(args.signing_key.parent / "jwks.json") in files
    assert args.identity_url == "http://identity:8101"
    assert args.membership_url == "http://membership:8102"
    assert args.admin_password is None  # never a password in a manifest
    labels = obj["spec"]["template"]["metadata"]["labels"]
    assert labels["prodigy-users/operator-tool"] == "true"
    tools = next(o for o in render("production") if o["metadata"]["name"] == "operator-tools")
    assert tools["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_the_replay_job_runs_with_reportings_settings_and_its_own_network_policy() -> None:
    objects = {o["kind"]: o for o in load(_job("replay-reporting.yaml"))}
    job, network = objects["Job"], objects["NetworkPolicy"]
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert _parse(c["args"]).command == "replay" and c["args"][1:] == ["reporting"]
    reporting = next(
        o
        for o in render("production")
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "reporting"
    )
    (serving,) = [
        x for _, x in containers(reporting["spec"]["template"]["spec"]) if x["name"] == "reporting"
    ]
    wanted = {"PRODIGY_DATABASE_URL", "PRODIGY_KAFKA_SASL_USERNAME", "PRODIGY_KAFKA_SASL_PASSWORD"}
    env = {v["name"]: v for v in c["env"]}
    for name in wanted:
        assert env[name] == next(v for v in serving["env"] if v["name"] == name), name
    config = next(
        o["data"]
        for o in render("production")
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prodigy-config")
    )
    for name, var in env.items():
        if name in config:
            assert var["value"] == config[name], name
    assert {"PRODIGY_KAFKA_BOOTSTRAP_SERVERS", "PRODIGY_KAFKA_SECURITY_PROTOCOL"} <= env.keys()
    assert set(env) <= _env_names("reporting") | {"DB_USERNAME", "DB_PASSWORD"}
    assert "/etc/prodigy/kafka-ca/ca.crt" in mounted_files(pod, c)
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert network["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    # Not the reporting Service's pods: the Job must not receive its HTTP traffic.
    assert labels["app.kubernetes.io/name"] != "reporting"
    assert "Ingress" in network["spec"]["policyTypes"] and not network["spec"].get("ingress")
