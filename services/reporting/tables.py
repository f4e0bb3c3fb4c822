"""Every table of reporting in one MetaData: what its migrations build and Alembic compares.

The tables are declared in ``store.py`` and ``store_training.py``, and the users table's
read indexes in ``queries.py`` (beside the queries they serve), all on the MetaData of
``store.py``; each is only in it once its module is imported, so this module imports
them (``migrations/env.py`` and the migration check import it).
"""

# Imported for the tables (and indexes) they declare on store's MetaData.
from . import queries, store_training  # noqa: F401
from .store import metadata

__all__ = ["metadata"]
