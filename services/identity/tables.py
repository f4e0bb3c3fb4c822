"""Every table of identity in one MetaData: what its migrations build and Alembic compares.

The tables are declared in ``store.py``, beside their queries; this module is the one
place that says which modules declare them (``migrations/env.py`` and the migration
check import it).
"""

from .store import metadata

__all__ = ["metadata"]
