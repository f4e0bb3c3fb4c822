"""``Annotated`` dependencies pages use: the services, the settings, the session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .clients import Services
from .session import MaybeSignedIn, SignedIn, settings_of
from .settings import Settings


def services_of(request: Request) -> Services:
    """The shared client of the four services."""
    services: Services = request.app.state.services
    return services


Api = Annotated[Services, Depends(services_of)]
Config = Annotated[Settings, Depends(settings_of)]

__all__ = ["Api", "Config", "MaybeSignedIn", "SignedIn"]
