"""The embedded dev stack (PostgreSQL, Tansu, mail capture, the four services under
one supervisor) and the ``prodigy-users`` command line.

Nothing heavy is imported here: ``prodigy-users serve`` starts through this package.
"""

SERVICES: tuple[str, ...] = ("identity", "membership", "notifications", "reporting")
DEFAULT_DATA_DIR = ".prodigy-data"
