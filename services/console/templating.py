"""Rendering pages: one template block serves both the whole page and the htmx fragment.

``render(request, "users.html", context, block="results")`` answers an htmx
request (``HX-Request``) with the block alone and any other request with the full
page (jinja2-fragments), so every page also works as plain HTML without script.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2_fragments.starlette import Jinja2Blocks
from starlette.responses import Response

from .csrf import FIELD, token_for

TEMPLATES = Path(__file__).resolve().parent / "templates"
HTMX_SCRIPT = "/static/vendor/htmx-2.0.11.min.js"

templates = Jinja2Blocks(directory=str(TEMPLATES))
templates.env.globals.update(csrf_token=token_for, csrf_field_name=FIELD, htmx_script=HTMX_SCRIPT)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def is_fragment_request(request: Request) -> bool:
    """An htmx request that swaps part of the page (not a history restore)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    block: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The page ``name`` (or only its ``block`` for an htmx request)."""
    ctx = {"request": request, **(context or {})}
    out_headers = {"Vary": "HX-Request", **(headers or {})}
    if block is not None and is_fragment_request(request):
        return templates.TemplateResponse(
            request, name, ctx, status_code=status, headers=out_headers, block_name=block
        )
    return templates.TemplateResponse(request, name, ctx, status_code=status, headers=out_headers)
