"""The router every page module starts from: CSRF is checked on each of its
state-changing routes, so a page module cannot forget it."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from .csrf import check_csrf


def page_router() -> APIRouter:
    """An ``APIRouter`` whose POST/PUT/PATCH/DELETE routes refuse a missing CSRF token."""
    return APIRouter(dependencies=[Depends(check_csrf)], include_in_schema=False)
