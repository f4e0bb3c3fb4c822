"""Every table of identity's database in one MetaData (``migrations/env.py`` reads it).

The outbox, inbox and relay-state tables are the runtime's (``messaging_tables``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from prodigy_users.runtime.revocation_store import token_cutoffs
from prodigy_users.runtime.throttle_store import throttle_counts

metadata = sa.MetaData()

# The runtime's access-token cut-offs (``runtime.revocation_store``): the verifier
# refuses a token issued before its account's; declared by the runtime, compared here.
token_cutoffs.to_metadata(metadata)

# The runtime's throttling counts (sign-in, set-password, reset requests), shared by
# every replica; declared by the runtime, compared here with the rest.
throttle_counts.to_metadata(metadata)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    # One account per email, case-insensitively, enforced by the database under concurrency.
    # NULL once the account is merged into another (``merges``): its address is the kept
    # account's from then on, and nobody signs in as it.
    sa.Column("email_normalised", sa.Text, nullable=True, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # NULL: someone registered with this address and has not proved they own it yet;
    # the account cannot sign in, any other request for the address takes it over,
    # and the sweep deletes it once its confirmation link has lapsed.
    sa.Column("email_confirmed_at", sa.DateTime(timezone=True), nullable=True),
    # An operator merged this account into another (a person had two): it holds no
    # address, cannot sign in, and every later event about it counts for the kept one.
    sa.Column("merged_into", UUID(as_uuid=True), sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
)
# The sweep's candidates: few at any time, so a small partial index.
sa.Index(
    "ix_accounts_unconfirmed",
    accounts.c.created_at,
    postgresql_where=accounts.c.email_confirmed_at.is_(None),
)

credential_tokens = sa.Table(
    "credential_tokens",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column(
        "account_id", UUID(as_uuid=True), sa.ForeignKey("accounts.id"), nullable=False, index=True
    ),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    # What an email-confirmation token completes: membership's request and its department.
    sa.Column("request_id", UUID(as_uuid=True), nullable=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=True),
    # What an email-change token completes: the address, as typed, the account moves to.
    sa.Column("new_email", sa.Text, nullable=True),
)

# Every address of every account: its login email (``login`` true, kept in step with
# ``accounts.email`` by the store) and the addresses linked to it. The unique index on
# the normalised address is what keeps two accounts from ever holding one address,
# whichever of them holds it as a login email and whichever as a linked one, under
# concurrency too (``accounts.email_normalised`` stays unique as well).
account_addresses = sa.Table(
    "account_addresses",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "account_id", UUID(as_uuid=True), sa.ForeignKey("accounts.id"), nullable=False, index=True
    ),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_normalised", sa.Text, nullable=False, unique=True),
    sa.Column("login", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "linked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)
