"""Every table of notifications in one MetaData: what its migrations build and Alembic
compares.

The tables are declared in ``store.py``, beside their queries (``store_delivery.py``
queries them and declares none); this module is the one place that says which
modules declare them (``migrations/env.py`` and the migration check import it).
"""

from .store import metadata

__all__ = ["metadata"]
