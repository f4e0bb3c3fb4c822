"""The repository explains itself: no document points outside it, and ``docs/api.md``
lists every HTTP route of every service (and of the dev stack's mail capture) and
every problem type the services' tables map, so the page stays complete as routes
and errors are added.

The apps are built as ``prodigy-users serve`` builds them, without starting them: no
database, broker or network is needed.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI

from prodigy_users.runtime.errors import SHARED_PROBLEMS
from prodigy_users.runtime.service import ServiceSpec, build_app
from prodigy_users.stack import SERVICES
from prodigy_users.stack.mailcapture import MailStore
from prodigy_users.stack.mailcapture import build_app as mail_capture_app

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
# Written in two pieces so that this file does not mention it itself.
OUTSIDE = "../" + "shared"
# What a checkout holds that is not the repository's (used only without git).
NOT_OURS = {".git", ".venv", "build", "dist", "__pycache__", ".prodigy-data"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# A route as the page writes it: `POST /v1/auth/token`.
DOCUMENTED_ROUTE = re.compile(r"`(" + "|".join(METHODS) + r") (/[^`\s]*)`")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")

Route = tuple[str, str]


@dataclass(frozen=True)
class Served:
    """One service as it would run: its spec and its app."""

    spec: ServiceSpec
    app: FastAPI


def repository_files() -> list[Path]:
    """The repository's files: what git tracks, or (outside a git checkout) the tree."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return [
            path
            for path in ROOT.rglob("*")
            if path.is_file()
            and not NOT_OURS & set(path.relative_to(ROOT).parts)
            and not any(p.endswith((".egg-info", "_cache")) for p in path.parts)
        ]
    return [ROOT / name for name in listed.decode().split("\0") if name]


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, Served]]:
    # Built from their defaults: settings a developer's shell exports (key paths of a
    # stack that is not there) must not decide what this test sees.
    with pytest.MonkeyPatch.context() as env:
        for name in os.environ:
            if name.startswith("PRODIGY_"):
                env.delenv(name)
        served = {}
        for name in SERVICES:
            spec = importlib.import_module(f"prodigy_users.{name}.app").spec()
            served[name] = Served(spec, build_app(spec))
    yield served


def openapi_routes(app: FastAPI) -> set[Route]:
    """Every operation of the app's OpenAPI document."""
    paths = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method.upper() in METHODS
    }


def router_routes(routers: list[APIRouter]) -> set[Route]:
    """Every route the service's own routers declare, in its OpenAPI document or not."""
    return {
        (method, route.path)
        for router in routers
        for route in router.routes
        for method in getattr(route, "methods", None) or ()
        if method in METHODS and hasattr(route, "path")
    }


def app_routes(app: FastAPI) -> set[Route]:
    """Routes the app itself adds (health, metrics, the OpenAPI document and pages)."""
    return {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if method in METHODS and hasattr(route, "path")
    }


def documented_routes() -> set[Route]:
    """The routes ``docs/api.md`` names, as `METHOD /path`."""
    return {(m, p) for m, p in DOCUMENTED_ROUTE.findall(API_DOC.read_text())}


def test_no_file_of_the_repository_points_outside_it() -> None:
    files = repository_files()
    assert API_DOC in files and Path(__file__) in files  # the listing found the repository
    mentioning = []
    for path in files:
        try:
            if OUTSIDE in path.read_text(encoding="utf-8"):
                mentioning.append(str(path.relative_to(ROOT)))
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary, or deleted but not yet committed
    assert mentioning == [], f"these mention {OUTSIDE}: {mentioning}"


def test_every_relative_link_of_a_document_stays_in_the_repository() -> None:
    documents = [p for p in repository_files() if p.suffix == ".md"]
    assert ROOT / "README.md" in documents
    broken = []
    for document in documents:
        for target in MARKDOWN_LINK.findall(document.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            resolved = (document.parent / target.split("#", 1)[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target}")
    assert broken == [], f"links that leave the repository or lead nowhere: {broken}"


def test_api_md_lists_every_route_of_every_service(services: dict[str, Served]) -> None:
    documented = documented_routes()
    missing = []
    for name, served in services.items():
        routes = openapi_routes(served.app) | router_routes(list(served.spec.routers))
        assert ("GET", "/healthz") in routes  # the app was built with its routes
        missing += [f"{name}: {m} {p}" for m, p in sorted(routes - documented)]
    assert missing == [], f"routes missing from docs/api.md: {missing}"


def test_api_md_lists_the_mail_capture_routes() -> None:
    routes = openapi_routes(mail_capture_app(MailStore(None)))
    assert ("GET", "/messages") in routes
    assert sorted(routes - documented_routes()) == []


def test_every_route_api_md_names_exists(services: dict[str, Served]) -> None:
    served = openapi_routes(mail_capture_app(MailStore(None)))
    for service in services.values():
        served |= openapi_routes(service.app) | app_routes(service.app)
        served |= router_routes(list(service.spec.routers))
    stale = sorted(documented_routes() - served)
    assert stale == [], f"docs/api.md names routes no service serves: {stale}"


def test_api_md_lists_every_problem_type_the_services_map(services: dict[str, Served]) -> None:
    text = API_DOC.read_text()
    tables = [SHARED_PROBLEMS, *(s.spec.problems for s in services.values())]
    slugs = {row.slug for table in tables for row in table.values()}
    assert "unauthorized" in slugs
    missing = sorted(s for s in slugs if f"| `{s}` |" not in text)
    assert missing == [], f"problem types missing from docs/api.md: {missing}"
