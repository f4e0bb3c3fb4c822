"""What the per-service error tests share: the domain errors a module defines."""

from __future__ import annotations

import inspect
from types import ModuleType

from prodigy_users.runtime.errors import DomainError


def defined_in(module: ModuleType) -> list[type[DomainError]]:
    """Every ``DomainError`` subclass ``module`` defines itself (not those it imports)."""
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, DomainError) and cls.__module__ == module.__name__
    ]
    assert found, f"{module.__name__} defines no domain error"
    return found
