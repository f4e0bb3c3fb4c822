"""Bulk upload: the template, a file's dry-run preview, the run with its live progress,
the results per row (and results.csv), and the department's past uploads.

Everything is membership's imports API (admins only: its 403 is the page anyone
else sees). The console keeps nothing: a preview is membership's dry run (an import
that changes nothing), and starting the upload sends the file again, for real. The
progress is a fragment htmx polls every second while the upload runs; the
fragment of a finished upload carries no trigger, so the polling stops by itself,
and it asks for the whole page once (``HX-Refresh``) to show the results.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from . import departments
from .clients import Download, Problem
from .deps import Api, Config, SignedIn
from .errors import PageProblem, expect
from .forms import FormErrors, errors_from
from .imports_view import (
    PROBLEMS,
    ResultsPage,
    outcome_name,
    page_number,
    percent,
    read_page,
    shown_counts,
    size_words,
)
from .record_view import when
from .routing import page_router
from .session import Session
from .settings import Settings
from .templating import is_fragment_request, render

router = page_router()

IMPORTS = "/departments/{dept}/imports"
IMPORT = IMPORTS + "/{upload}"
# The console's own upload route, for the body limit (``app.build_app``).
UPLOAD_PATH = r"/departments/[^/]+/imports"
TEMPLATES = {"csv": "template.csv", "xlsx": "template.xlsx"}
UPLOAD_TYPES = (
    ".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)


def _api(dept: uuid.UUID, rest: str = "") -> str:
    return f"/v1/departments/{dept}/imports{rest}"


async def _uploads(api: Api, token: str, dept: uuid.UUID) -> list[dict[str, Any]]:
    result = await api.call("membership", "GET", _api(dept), token=token)
    return list(expect(result).json().get("items") or [])


async def _index(
    request: Request,
    api: Api,
    session: Session,
    settings: Settings,
    dept: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    uploads, department = await asyncio.gather(
        _uploads(api, session.token, dept), departments.resolve(api, session.token, dept)
    )
    return render(
        request,
        "imports/index.html",
        {
            "department": department,
            "uploads": uploads,
            "errors": errors or FormErrors(),
            "base": IMPORTS.format(dept=dept),
            "limit": size_words(settings.upload_max_bytes),
            "accept": UPLOAD_TYPES,
            "when": when,
            "section": "imports",
        },
        status=status,
    )


@router.get(IMPORTS)
async def imports_page(
    request: Request, dept: uuid.UUID, session: SignedIn, api: Api, settings: Config
) -> Response:
    """The upload form, the templates and the past uploads."""
    return await _index(request, api, session, settings, dept)


@router.get(IMPORTS + "/template.{kind}")
async def template(dept: uuid.UUID, kind: str, session: SignedIn, api: Api) -> Response:
    """The CSV or XLSX template, as membership makes it (the columns it reads)."""
    if kind not in TEMPLATES:
        raise PageProblem(Problem(404, "not-found", "Not found", "No such template."))
    download = await api.download(
        "membership", _api(dept, f"/{TEMPLATES[kind]}"), token=session.token
    )
    return _passed_on(download)


def _passed_on(download: Download | Problem) -> Response:
    """A file of membership's, streamed to the browser with its type and name."""
    if isinstance(download, Problem):
        raise PageProblem(download)
    return download.passed_on("application/octet-stream")


def _refused(problem: Problem) -> FormErrors:
    """membership's refusal of a file, next to the file field (403: a page of its own)."""
    if problem.status == 403:
        raise PageProblem(problem)
    errors = errors_from(problem, {"file": "File"})
    if not errors.fields:
        errors = FormErrors()
        errors.add(problem.detail, "file")
    return errors


@router.post(IMPORTS)
async def upload(
    request: Request,
    dept: uuid.UUID,
    session: SignedIn,
    api: Api,
    settings: Config,
    file: Annotated[UploadFile | None, Form()] = None,
    action: Annotated[str, Form()] = "preview",
) -> Response:
    """Send the file to membership: a dry run (``preview``) or the upload itself (``run``);
    then its page, which follows it to the end."""
    errors = FormErrors()
    data = b""
    if file is None or not file.filename:
        errors.add("Choose a CSV or XLSX file to upload.", "file")
    else:
        data = await file.read(settings.upload_max_bytes + 1)
        if len(data) > settings.upload_max_bytes:
            errors.add(
                f"The file is larger than {size_words(settings.upload_max_bytes)}: "
                "split it into smaller files.",
                "file",
            )
        elif not data:
            errors.add("The file is empty.", "file")
    if errors or file is None:
        return await _index(request, api, session, settings, dept, errors=errors, status=422)
    dry_run = action != "run"
    result = await api.call(
        "membership",
        "POST",
        _api(dept),
        token=session.token,
        params={"dry_run": "true" if dry_run else "false"},
        files={"file": (file.filename, data, file.content_type or "application/octet-stream")},
    )
    if isinstance(result, Problem):
        return await _index(
            request, api, session, settings, dept, errors=_refused(result), status=result.status
        )
    import_id = result.json().get("import_id")
    return RedirectResponse(IMPORT.format(dept=dept, upload=import_id), status_code=303)


async def _upload(api: Api, token: str, dept: uuid.UUID, upload: uuid.UUID) -> dict[str, Any]:
    result = await api.call("membership", "GET", _api(dept, f"/{upload}"), token=token)
    return expect(result).json()


async def _results(
    api: Api, token: str, dept: uuid.UUID, upload: dict[str, Any], page: int
) -> ResultsPage:
    """A page of the finished upload's results (a preview: only its rows with problems)."""
    download = await api.download(
        "membership", _api(dept, f"/{upload['import_id']}/results.csv"), token=token
    )
    if isinstance(download, Problem):
        raise PageProblem(download)
    try:
        only = PROBLEMS if upload.get("dry_run") else None
        return await read_page(download.response.aiter_lines(), page, only=only)
    finally:
        await download.response.aclose()


@router.get(IMPORT)
async def upload_page(
    request: Request,
    dept: uuid.UUID,
    upload: uuid.UUID,
    session: SignedIn,
    api: Api,
    settings: Config,
) -> Response:
    """One upload: its progress while it runs; when finished, its counts and rows (a
    preview's rows with problems, and the form that starts it for real)."""
    found, department = await asyncio.gather(
        _upload(api, session.token, dept, upload), departments.resolve(api, session.token, dept)
    )
    page = page_number(request.query_params.get("page"))
    finished = found.get("status") == "finished"
    results = await _results(api, session.token, dept, found, page) if finished else None
    return _upload_view(request, dept, found, department, settings, results=results, page=page)


def _upload_view(
    request: Request,
    dept: uuid.UUID,
    found: dict[str, Any],
    department: departments.DepartmentView | None,
    settings: Settings,
    *,
    results: ResultsPage | None = None,
    page: int = 1,
) -> Response:
    base = IMPORT.format(dept=dept, upload=found.get("import_id"))
    return render(
        request,
        "imports/upload.html",
        {
            "department": department,
            "upload": found,
            "finished": found.get("status") == "finished",
            "counts": shown_counts(found),
            "percent": percent(found),
            "results": results,
            "page": page,
            "base": base,
            "imports": IMPORTS.format(dept=dept),
            "errors": FormErrors(),
            "limit": size_words(settings.upload_max_bytes),
            "accept": UPLOAD_TYPES,
            "outcome_name": outcome_name,
            "when": when,
            "section": "imports",
        },
        block="progress",
    )


@router.get(IMPORT + "/progress")
async def progress(
    request: Request,
    dept: uuid.UUID,
    upload: uuid.UUID,
    session: SignedIn,
    api: Api,
    settings: Config,
) -> Response:
    """The progress fragment htmx polls; once finished, the whole page again."""
    found = await _upload(api, session.token, dept, upload)
    if not is_fragment_request(request):
        return RedirectResponse(IMPORT.format(dept=dept, upload=upload), status_code=303)
    if found.get("status") == "finished":
        # The results need the whole page: htmx reloads it (and the polling is over).
        return Response(status_code=200, headers={"HX-Refresh": "true"})
    return _upload_view(request, dept, found, None, settings)


@router.get(IMPORT + "/results.csv")
async def results_csv(dept: uuid.UUID, upload: uuid.UUID, session: SignedIn, api: Api) -> Response:
    """membership's results.csv, streamed through as it comes."""
    download = await api.download(
        "membership", _api(dept, f"/{upload}/results.csv"), token=session.token
    )
    return _passed_on(download)
