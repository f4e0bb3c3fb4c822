"""Every table of membership in one MetaData: what its migrations build and Alembic compares.

The tables are declared in the ``store*`` modules, beside their queries, on the one
MetaData of ``store.py``; a table is only in it once its module is imported, so this
module imports each of them (``migrations/env.py`` and the migration check import it).
"""

# Imported for the tables (and indexes) they declare on store's MetaData.
from . import store_groups, store_imports, store_invitations  # noqa: F401
from .store import metadata

__all__ = ["metadata"]
