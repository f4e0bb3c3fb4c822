"""Every service maps each domain error it defines to a problem, in the one table its
app answers with: an error without a row would reach clients as a 500."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from prodigy_users.runtime.errors import DomainError
from tests.unit.domain_errors import defined_in

SERVICES = ("identity", "membership", "notifications", "reporting")


def errors_of(service: str) -> ModuleType:
    return importlib.import_module(f"prodigy_users.{service}.errors")


def raised(service: str) -> list[type[DomainError]]:
    """The errors a service raises: a family's base (``InvitationUnusable``) is not."""
    defined = defined_in(errors_of(service))
    return [e for e in defined if not any(e in d.__mro__[1:] for d in defined)]


@pytest.mark.parametrize(
    "error",
    [e for service in SERVICES for e in raised(service)],
    ids=lambda cls: f"{cls.__module__.split('.')[1]}.{cls.__name__}",
)
def test_every_error_has_a_row(error: type[DomainError]) -> None:
    service = error.__module__.split(".")[1]
    assert error in errors_of(service).PROBLEMS


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_answers_with_its_table(service: str) -> None:
    app = importlib.import_module(f"prodigy_users.{service}.app")
    assert app.spec().problems is errors_of(service).PROBLEMS
