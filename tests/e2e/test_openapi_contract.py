"""The services' OpenAPI documents against their answers: Schemathesis, every check.

Each of the four documents is read from the running service and given to Schemathesis'
engine (examples, coverage and fuzzing phases, all checks, a few examples per operation),
first as a department's admin with the department pinned (so the generated requests reach
the real routes, not only the 403/404 of a random department), then as a platform operator
(the operator routes: creating departments, password links, imports). A route or an answer
added tomorrow that the document does not describe fails here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, from_schema
from schemathesis.engine import events as engine_events

from prodigy_users.runtime.openapi import REFUSALS
from prodigy_users.runtime.problems import MEDIA_TYPE
from prodigy_users.stack import SERVICES
from tests.support import Admin, Api

pytestmark = pytest.mark.e2e

# Examples per operation and phase: enough to reach every status of every route in a
# run that stays around a minute on two cores (CI runs it on every push).
MAX_EXAMPLES = 6


@pytest.fixture(scope="module")
async def admin(api: Api) -> Admin:
    return await api.create_department()


async def documents(api: Api) -> dict[str, dict[str, Any]]:
    out = {}
    for service in SERVICES:
        r = await api.http.get(api.url(service, "/openapi.json"))
        assert r.status_code == 200
        out[service] = r.json()
    return out


# What a request the schema accepts may be answered with whatever the operation (the
# defaults of ``positive_data_acceptance``); each operation adds the statuses its rules
# refuse with (``x-rule-refusals``: a random invitation token is a 400, not a schema error).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def config(
    base_url: str,
    token: str,
    pinned: dict[str, str],
    document: dict[str, Any],
    *,
    unexpected_methods: bool = True,
) -> SchemathesisConfig:
    """Every check, the bounded phases (no stateful links: the documents declare none).

    ``unexpected_methods``: the coverage phase also sends every method a path does not
    have (a 405 the router gives before any token is read, so one pass is enough).
    """
    coverage: dict[str, Any] = {} if unexpected_methods else {"unexpected-methods": []}
    operations = [
        {
            "include-operation-id": operation["operationId"],
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": sorted(
                        {*ACCEPTED, *map(str, operation.get(REFUSALS, ()))}
                    )
                }
            },
        }
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and operation.get(REFUSALS)
    ]
    return SchemathesisConfig.from_dict(
        {
            "base-url": base_url,
            "headers": {"Authorization": f"Bearer {token}"},
            "parameters": {f"path.{name}": value for name, value in pinned.items()},
            "checks": {"enabled": True},
            "phases": {"stateful": {"enabled": False}, "coverage": coverage},
            # Text is UTF-8 without NUL (docs/security.md): every service refuses a lone
            # surrogate or a NUL in any string of a request, unknown fields included.
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "codec": "utf-8",
                "allow-x00": False,
            },
            "operations": operations,
            "request-timeout": 30,
            "workers": 1,
        }
    )


@schemathesis.check
def problem_types_are_documented(ctx: Any, response: Any, case: Any) -> bool | None:
    """A problem answer's type is one the operation documents for that status (its
    ``x-problem-types``), and it comes as ``application/problem+json``."""
    if response.status_code < 400 or response.status_code == 405:
        # 405: a method the path does not have (``unsupported_method``), no operation's.
        return None
    documented = case.operation.definition.raw.get("responses", {}).get(
        str(response.status_code), {}
    )
    media = (response.headers.get("content-type") or [""])[0].split(";")[0]
    if media != MEDIA_TYPE:
        raise AssertionError(f"a {response.status_code} answered as {media!r}")
    slug = str(response.json().get("type", "")).rsplit("/", 1)[-1]
    if slug not in documented.get("x-problem-types", ()):
        raise AssertionError(
            f"problem type /{slug} at {response.status_code} is not among the documented "
            f"{documented.get('x-problem-types')}"
        )
    return None


def failures(document: dict[str, Any], settings: SchemathesisConfig) -> list[str]:
    """What the run found: each failed check (with the request to reproduce it), or error."""
    schema = schemathesis.openapi.from_dict(document, config=settings)
    found: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            for case_id, checks in event.recorder.checks.items():
                interaction = event.recorder.interactions.get(case_id)
                response = getattr(interaction, "response", None)
                status = getattr(response, "status_code", None)
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        found.append(
                            f"{event.label}: {check.name}: {failure.title}: {failure.message}"
                            f" (answered {status})\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, engine_events.NonFatalError):
            found.append(f"{event.label}: error: {event.value!r}")
        elif isinstance(event, engine_events.FatalError):
            found.append(f"fatal: {event.exception!r}")
    return sorted(set(found))


async def run(
    api: Api, token: str, pinned: dict[str, str], *, unexpected_methods: bool = True
) -> dict[str, list[str]]:
    found = {}
    for service, document in (await documents(api)).items():
        settings = config(
            api.urls[service], token, pinned, document, unexpected_methods=unexpected_methods
        )
        # The engine is synchronous (it sends with requests): off the event loop.
        found[service] = await asyncio.to_thread(failures, document, settings)
    return {service: f for service, f in found.items() if f}


async def test_every_answer_to_an_admin_is_the_one_the_documents_describe(
    api: Api, admin: Admin
) -> None:
    found = await run(api, admin.token, {"dept": admin.department_id})
    assert not found, "\n\n".join(f"[{s}]\n" + "\n".join(f) for s, f in found.items())


async def test_every_answer_to_an_operator_is_the_one_the_documents_describe(
    api: Api, admin: Admin
) -> None:
    # The methods a path lacks were sent in the admin's pass: their 405 ignores the token.
    found = await run(
        api, api.keys.operator_token(), {"dept": admin.department_id}, unexpected_methods=False
    )
    assert not found, "\n\n".join(f"[{s}]\n" + "\n".join(f) for s, f in found.items())
