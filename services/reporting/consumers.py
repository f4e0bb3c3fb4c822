"""Reporting's handlers table: payload type -> handler (thin: parse, call the use case).

Every membership event goes through the projection's fold: whole runs at once on
the consumer's fast path (``BATCH``), one at a time when a batch is retried.
Invitation events are rows of the activity log. Training events keep the record's
plans and transcripts; identity's ``TokensRevoked``
the access-token cut-offs the verifier checks, its ``AccountUpdated`` the names and
emails of every row of an account, its ``AccountMerged`` the training of a merged
account (membership's ``member_merged`` moves the rows, through the projection).
"""

from __future__ import annotations

from prodigy_users.contracts.envelope import Payload
from prodigy_users.contracts.identity import AccountMerged, AccountUpdated, TokensRevoked
from prodigy_users.contracts.training import CertificateRevoked, CourseAssigned, CourseCompleted
from prodigy_users.runtime import revocation_store
from prodigy_users.runtime.consumer import BatchHandler, Handler

from .accounts import on_account_updated
from .activity.rules import INVITATION_ACTIONS
from .activity.service import on_invitation
from .merges import on_account_merged
from .projection.rules import PROJECTED
from .projection.service import project, project_one
from .record.service import record_assignment, record_completion, record_revocation

HANDLERS: dict[type[Payload], Handler] = {
    **dict.fromkeys(PROJECTED, project_one),
    # Invitations sent, sent again, withdrawn or lapsed: rows of the activity log.
    **dict.fromkeys(INVITATION_ACTIONS, on_invitation),
    CourseAssigned: record_assignment,
    CourseCompleted: record_completion,
    CertificateRevoked: record_revocation,
    # The access-token cut-offs the verifier checks.
    TokensRevoked: revocation_store.record,
    # A changed name or login email: every row of the account, in every department.
    AccountUpdated: on_account_updated,
    # An operator merged two accounts: the merged one's training is the kept one's.
    AccountMerged: on_account_merged,
}

BATCH_TYPES: frozenset[type[Payload]] = PROJECTED
BATCH: BatchHandler = project
