"""The embedded dev stack (PostgreSQL, Tansu, mail capture, the four services and the
console under one supervisor) and the ``prodigy-users`` command line.

Nothing heavy is imported here: ``prodigy-users serve`` starts through this package.
"""

SERVICES: tuple[str, ...] = ("identity", "membership", "notifications", "reporting")
# The web console: served like a service, but it has no database and no Kafka.
CONSOLE = "console"
# What ``prodigy-users serve`` runs.
SERVABLE: tuple[str, ...] = (*SERVICES, CONSOLE)
DEFAULT_DATA_DIR = ".prodigy-data"
