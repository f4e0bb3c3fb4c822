"""How reporting's export routes answer: the file streamed as it is made, as a download."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from fastapi.responses import StreamingResponse


class ExportFile(Protocol):
    """A file being made (the users table's or the activity log's export)."""

    @property
    def file_name(self) -> str: ...

    @property
    def media_type(self) -> str: ...

    @property
    def chunks(self) -> AsyncIterator[bytes]: ...


def export_response(export: ExportFile) -> StreamingResponse:
    """The export as a download under its file name, streamed and never cached."""
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{export.file_name}"',
            "Cache-Control": "no-store",
        },
    )
