"""The signed-in person's own training ("My training"): their record in every department
they belong or belonged to, and their certificates, from reporting's ``/v1/me`` routes.

A department that removed the person still shows, marked as left: their training
and history stay theirs (its admins no longer see them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from .clients import Problem
from .deps import Api, SignedIn
from .errors import PageProblem, expect
from .record_view import HistoryLine, day, group_names, history, number, role_name
from .routing import page_router
from .templating import render

router = page_router()

PAGE = "/my/training"


@dataclass(frozen=True)
class DepartmentTraining:
    """One department of the person's record, as the page shows it."""

    record: dict[str, Any]
    history: list[HistoryLine]

    @property
    def title(self) -> str:
        """The department's name (reporting may not have heard it yet)."""
        return str(self.record.get("department_name") or "A department")

    @property
    def left(self) -> bool:
        """The person was removed from it."""
        return self.record.get("member") is False


@router.get(PAGE)
async def my_training(request: Request, session: SignedIn, api: Api) -> Response:
    """Plans, transcript, hours and credits, certificates and memberships, per department."""
    body = expect(await api.call("reporting", "GET", "/v1/me/record", token=session.token)).json()
    shown = [
        DepartmentTraining(d, history(d, group_names(d, []))) for d in body.get("departments") or []
    ]
    return render(
        request,
        "my_training/index.html",
        {
            "departments": shown,
            "totals": body.get("totals") or {},
            "day": day,
            "number": number,
            "role_name": role_name,
        },
    )


@router.get(PAGE + "/certificates/{certificate}")
async def my_certificate(certificate: str, session: SignedIn, api: Api) -> Response:
    """One of the person's certificates as a PDF, streamed from reporting with its name."""
    download = await api.download(
        "reporting", f"/v1/me/certificates/{certificate}", token=session.token
    )
    if isinstance(download, Problem):
        raise PageProblem(download)
    return download.passed_on("application/pdf")
