"""The text guard: NUL (and lone surrogates) refused in every string of every request,
on routes that declare nothing about text, with the field named; everything else passes
untouched, its body intact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from starlette.datastructures import UploadFile

from prodigy_users.runtime import problems
from prodigy_users.runtime.text_guard import TextGuard, json_problem


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(TextGuard, max_body=64 * 1024)

    @app.post("/things/{thing}/parts/{part}")
    async def things(thing: str, part: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"thing": thing, "part": part, "body": body}

    @app.get("/search")
    async def search(q: str = "", page: str = "") -> dict[str, str]:
        return {"q": q, "page": page}

    @app.post("/form")
    async def form(token: str = Form(""), password: str = Form("")) -> dict[str, str]:
        return {"token": token, "password": password}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        form = await request.form()
        file = form["file"]
        assert isinstance(file, UploadFile)
        return {"name": file.filename, "size": len(await file.read()), "note": form.get("note")}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://guarded") as http:
        yield http


def refused(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/validation")
    assert body["errors"][0]["field"] == field, body
    assert "U+0000" in body["errors"][0]["message"] or "surrogate" in body["errors"][0]["message"]


async def test_json_strings_anywhere_are_checked_and_named(client: httpx.AsyncClient) -> None:
    url = "/things/a/parts/b"
    for raw, field in [
        ('{"name": "Night\\u0000shift"}', "name"),
        ('{"admin": {"email": "a\\u0000@example.org"}}', "admin.email"),
        ('{"allowed_domains": ["ok.org", "x\\u0000y.org"]}', "allowed_domains.1"),
        ('{"deep": [{"list": [[1, "\\u0000"]]}]}', "deep.0.list.0.1"),
        ('{"na\\u0000me": "x"}', "(body)"),
        ('{"name": "lone \\ud800 surrogate"}', "name"),
        ('["\\u0000"]', "0"),
        ('"\\u0000"', "(body)"),
    ]:
        r = await client.post(url, content=raw, headers={"content-type": "application/json"})
        refused(r, field)
    r = await client.post(
        url, content='{"a": "\\u0000"}', headers={"content-type": "application/merge-patch+json"}
    )
    refused(r, "a")


async def test_clean_bodies_reach_the_route_intact(client: httpx.AsyncClient) -> None:
    body = {
        "name": "Zoë \\u0000 literally",  # a backslash and "u0000" are not NUL
        "emoji": "😀",  # escaped as a surrogate pair: one character, fine
        "pasted": "a@example.org\n\tb@example.org",
    }
    r = await client.post("/things/a/parts/b", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"thing": "a", "part": "b", "body": body}
    r = await client.post(
        "/things/a/parts/b", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["type"].endswith("/malformed-json"), "the route's"


async def test_path_and_query_are_checked(client: httpx.AsyncClient) -> None:
    refused(await client.post("/things/a%00b/parts/c", json={}), "thing")
    refused(await client.post("/things/a/parts/%00", json={}), "part")
    refused(await client.get("/nowhere/%00"), "(path)")
    refused(await client.get("/search", params={"q": "Ana\x00"}), "q")
    refused(await client.get("/search?page=1&q=%00"), "q")
    refused(await client.get("/search?%00=1"), "(query)")
    r = await client.get("/search", params={"q": "Ana Lima", "page": "2"})
    assert r.json() == {"q": "Ana Lima", "page": "2"}


async def test_forms_are_checked(client: httpx.AsyncClient) -> None:
    refused(await client.post("/form", data={"token": "t\x00", "password": "p"}), "token")
    refused(
        await client.post(
            "/form",
            content=b"password=%00",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        "password",
    )
    r = await client.post("/form", data={"token": "t", "password": "p w\t"})
    assert r.json() == {"token": "t", "password": "p w\t"}


async def test_multipart_names_and_plain_fields_are_checked_never_file_content(
    client: httpx.AsyncClient,
) -> None:
    content = b"PK\x03\x04\x00\x00binary\x00with NULs"
    # Raw, as a hostile client sends it (httpx would percent-encode the NUL).
    raw = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.csv"\r\n\r\n'
        + content
        + b"\r\n--b--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=b"}
    refused(await client.post("/upload", content=raw, headers=headers), "file")
    refused(
        await client.post("/upload", files={"file": ("a.csv", content)}, data={"note": "\x00"}),
        "note",
    )
    r = await client.post("/upload", files={"file": ("users.xlsx", content)}, data={"note": "hi"})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "users.xlsx", "size": len(content), "note": "hi"}


async def test_bodies_larger_than_the_limit_pass_unread(client: httpx.AsyncClient) -> None:
    # Every route refuses such bodies itself (body limits): the guard does not buffer them.
    big = {"name": "\x00", "pad": "x" * 70_000}
    r = await client.post("/things/a/parts/b", json=big)
    assert r.status_code == 200 and r.json()["body"]["pad"] == big["pad"]


def test_only_bodies_with_a_suspect_escape_are_parsed() -> None:
    assert json_problem(b'{"a": "' + b"x" * 100_000 + b'"}') is None
    assert json_problem(b'{"a": "\\\\u0000"}') is None  # an escaped backslash, then "u0000"
    assert json_problem(b'{"a": "\\u0000"}') == ("a", "must not contain U+0000 (NUL)")
