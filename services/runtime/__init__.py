"""What every service needs at run time: settings, database, outbox relay,
inbox, broker wiring, token verification, problem details and logging."""
