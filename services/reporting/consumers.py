"""Reporting's handlers table: payload type -> handler (thin: parse, call the use case).

Every membership event goes through the projection's fold: whole runs at once on
the consumer's fast path (``BATCH``), one at a time when a batch is retried.
"""

from __future__ import annotations

from prodigy_users.contracts.envelope import Payload
from prodigy_users.runtime.consumer import BatchHandler, Handler

from . import service
from .projection import PROJECTED
from .training import TRAINING_HANDLERS

HANDLERS: dict[type[Payload], Handler] = {
    **dict.fromkeys(PROJECTED, service.project_one),
    **TRAINING_HANDLERS,
}

BATCH_TYPES: frozenset[type[Payload]] = PROJECTED
BATCH: BatchHandler = service.project
