"""Every table of notifications' database in one MetaData (``migrations/env.py`` reads it).

The outbox, inbox and relay-state tables are the runtime's (``messaging_tables``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from prodigy_users.runtime.revocation_store import token_cutoffs

from .domain import DUE_STATUSES

metadata = sa.MetaData()

# The runtime's access-token cut-offs (``runtime.revocation_store``): the verifier
# refuses a token issued before its account's; declared by the runtime, compared here.
token_cutoffs.to_metadata(metadata)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

# Who administers which department: the email log's only readers.
memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

emails = sa.Table(
    "emails",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("source_event_id", UUID(as_uuid=True), nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("recipient_name", sa.Text, nullable=False),
    sa.Column("department_id", UUID(as_uuid=True), nullable=True),
    sa.Column("account_id", UUID(as_uuid=True), nullable=True),
    # Still sealed to our key: nothing secret is stored in the clear. Cleared once
    # the email is sent or given up on.
    sa.Column("sealed_token", sa.Text, nullable=True),
    sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=True),
    # What else the template shows (role, inviter's name): never a secret.
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("correlation_id", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # When the email is next due; while ``sending`` it is the end of the lease.
    sa.Column(
        "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # The delivery worker that claimed it last (its session lock says whether it lives).
    sa.Column("lease_holder", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint(
        "source_event_id", "template", "recipient", name="emails_source_template_recipient"
    ),
    sa.CheckConstraint(
        "status IN ('pending', 'sending', 'retrying', 'sent', 'failed')", name="emails_status"
    ),
)
# The leases in force, read by every claim (a few hundred rows per worker at most).
sa.Index("emails_sending", emails.c.id, postgresql_where=emails.c.status == "sending")
sa.Index(
    "emails_due",
    emails.c.next_attempt_at,
    postgresql_where=emails.c.status.in_(DUE_STATUSES),
)
# The log's order (newest first, id breaking ties) is the cursor's: pages are index scans.
sa.Index(
    "emails_department_log",
    emails.c.department_id,
    emails.c.created_at.desc(),
    emails.c.id.desc(),
)
