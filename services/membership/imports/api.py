"""HTTP surface of bulk uploads: upload, progress, the list, results.csv, templates."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from prodigy_users.runtime.idempotency import current_key
from prodigy_users.runtime.openapi import raises
from prodigy_users.runtime.text import plain_text

from ..deps import ImportAdmin, ImportsService
from ..errors import (
    DamagedXlsx,
    EmptyFile,
    FileTooDemanding,
    FileTooLarge,
    ImportNotFound,
    MalformedCsv,
    NoEmailColumn,
    NoFile,
    NoRows,
    NotMultipart,
    TooManyRows,
    UnsafeFile,
    UnsupportedFileType,
)
from .files import template_xlsx
from .rules import TEMPLATE_HEADERS, template_csv
from .service import ImportView

router = APIRouter()

# Multipart framing around the file (boundaries, part headers, other fields).
FORM_OVERHEAD = 64 * 1024
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ImportCounts(BaseModel):
    """Rows per outcome so far; ``pending`` rows have none yet."""

    created: int = Field(0, description="New account and membership; credentials email sent.")
    invited: int = Field(0, description="The email already had an account: invited instead.")
    already_member: int = Field(0, description="Already a member (left as they were).")
    updated: int = Field(0, description="Member changed by an `update` upload.")
    duplicate_in_file: int = Field(0, description="Repeats the email of an earlier row.")
    invalid: int = Field(0, description="Refused; results.csv says why.")
    pending: int = Field(0, description="Not decided yet.")


class ImportPublic(BaseModel):
    """An import: the file, how its columns were read, and where it stands."""

    import_id: uuid.UUID
    status: Literal["running", "finished"]
    mode: Literal["add", "update"]
    dry_run: bool = Field(description="A preview: outcomes only, nothing changed.")
    file_name: str | None
    file_type: Literal["csv", "xlsx"]
    total_rows: int = Field(description="Rows below the header (blank rows not counted).")
    processed: int = Field(description="Rows with their outcome.")
    counts: ImportCounts
    columns: dict[str, str] = Field(
        description='Which header each field was read from, e.g. `{"email": "E-mail"}`.'
    )
    ignored_columns: list[str] = Field(description="Headers that were not recognised.")
    requested_by: uuid.UUID
    created_at: datetime
    finished_at: datetime | None
    results_url: str


class ImportsPage(BaseModel):
    """The department's imports, newest first."""

    items: list[ImportPublic]


def _public(view: ImportView) -> ImportPublic:
    counts = ImportCounts.model_validate(view.counts)
    base = f"/v1/departments/{view.department_id}/imports/{view.id}"
    return ImportPublic(
        import_id=view.id,
        status=view.status,
        mode=view.mode,
        dry_run=view.dry_run,
        file_name=view.file_name,
        file_type=view.file_type,
        total_rows=view.total_rows,
        processed=view.total_rows - counts.pending,
        counts=counts,
        columns=view.columns,
        ignored_columns=view.ignored_columns,
        requested_by=view.requested_by,
        created_at=view.created_at,
        finished_at=view.finished_at,
        results_url=f"{base}/results.csv",
    )


async def _uploaded(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The bytes of the multipart ``file`` field, refusing more than the limit early."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
        raise FileTooLarge(limit)  # said before reading a byte of it
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise NotMultipart()
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise NoFile()
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise FileTooLarge(limit)
        # Shown back and stored: no control characters (the text guard refused NUL).
        base = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        name = plain_text(base)[:255] or None
        return data, name
    finally:
        await form.close()


@router.post(
    "/v1/departments/{dept}/imports",
    status_code=202,
    operation_id="create_import",
    tags=["imports"],
    responses={
        202: {"description": "Stored; poll `import_url` for progress."},
        413: {"description": "Larger than 10 MB (`/file-too-large`)."},
        415: {"description": "Not a CSV or XLSX file."},
        422: {"description": "Empty, unreadable, no email column, or over 50,000 rows."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "CSV or XLSX, header row first.",
                            }
                        },
                    }
                }
            },
        }
    },
)
@raises(
    FileTooLarge,
    NoFile,
    NotMultipart,
    EmptyFile,
    UnsupportedFileType,
    TooManyRows,
    MalformedCsv,
    UnsafeFile,
    DamagedXlsx,
    NoRows,
    FileTooDemanding,
    NoEmailColumn,
)
async def create_import(
    dept: uuid.UUID,
    request: Request,
    admin: ImportAdmin,
    imports: ImportsService,
    dry_run: Annotated[
        bool, Query(description="Preview: every row's outcome, nothing changed.")
    ] = False,
    mode: Annotated[
        Literal["add", "update"],
        Query(description="`update`: existing members take their row's role, ID and groups."),
    ] = "add",
) -> JSONResponse:
    """Upload a CSV or XLSX of users; every row gets an outcome (see results.csv)."""
    data, file_name = await _uploaded(request, imports.settings.import_max_bytes)
    import_id = await imports.start(
        dept,
        admin.account_id,
        data,
        file_name=file_name,
        mode=mode,
        dry_run=dry_run,
        idempotency_key=current_key(),
    )
    url = f"/v1/departments/{dept}/imports/{import_id}"
    body = {
        "import_id": str(import_id),
        "status": "running",
        "dry_run": dry_run,
        "mode": mode,
        "import_url": url,
        "results_url": f"{url}/results.csv",
    }
    return JSONResponse(body, status_code=202, headers={"Location": url})


@router.get("/v1/departments/{dept}/imports", operation_id="list_imports", tags=["imports"])
async def list_imports(dept: uuid.UUID, _: ImportAdmin, imports: ImportsService) -> ImportsPage:
    """The department's imports, newest first, with their counts."""
    return ImportsPage(items=[_public(v) for v in await imports.listing(dept)])


@router.get(
    "/v1/departments/{dept}/imports/template.csv",
    operation_id="import_template_csv",
    tags=["imports"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def import_template_csv(dept: uuid.UUID, _: ImportAdmin) -> Response:
    """An empty CSV with the columns an upload reads."""
    return Response(
        template_csv(),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": 'attachment; filename="users-template.csv"'},
    )


@router.get(
    "/v1/departments/{dept}/imports/template.xlsx",
    operation_id="import_template_xlsx",
    tags=["imports"],
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}}},
)
async def import_template_xlsx(dept: uuid.UUID, _: ImportAdmin) -> Response:
    """An empty workbook with the columns an upload reads (and a help sheet)."""
    return Response(
        template_xlsx(TEMPLATE_HEADERS),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": 'attachment; filename="users-template.xlsx"'},
    )


@router.get(
    "/v1/departments/{dept}/imports/{import_id}", operation_id="get_import", tags=["imports"]
)
@raises(ImportNotFound)
async def get_import(
    dept: uuid.UUID, import_id: uuid.UUID, _: ImportAdmin, imports: ImportsService
) -> ImportPublic:
    """Progress: counts per outcome while it runs, final ones when finished."""
    view = await imports.get(dept, import_id)
    if view is None:
        raise ImportNotFound()
    return _public(view)


@router.get(
    "/v1/departments/{dept}/imports/{import_id}/results.csv",
    operation_id="import_results",
    tags=["imports"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
@raises(ImportNotFound)
async def import_results(
    dept: uuid.UUID, import_id: uuid.UUID, _: ImportAdmin, imports: ImportsService
) -> Any:
    """One row per input row: line number, the input, the outcome and the reason."""
    found = await imports.results(dept, import_id)
    if found is None:
        raise ImportNotFound()
    view, lines = found
    name = f"import-{view.id}-results.csv"
    return StreamingResponse(
        (line.encode() for line in lines),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
