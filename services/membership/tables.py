"""Every table of membership, in one MetaData (what migrations and autogenerate see).

Each feature package queries its own tables through its ``store.py``; the tables
are declared here together so the schema reads in one place and Alembic compares
all of it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from prodigy_users.runtime.idempotency_store import idempotency_keys
from prodigy_users.runtime.revocation_store import token_cutoffs
from prodigy_users.runtime.throttle_store import throttle_counts

metadata = sa.MetaData()

# The runtime's access-token cut-offs (``runtime.revocation_store``): the verifier
# refuses a token issued before its account's; declared by the runtime, compared here.
token_cutoffs.to_metadata(metadata)

# The runtime's table of Idempotency-Key answers (membership's POSTs that create
# something honour the header); declared by the runtime, compared here with the rest.
idempotency_keys.to_metadata(metadata)
# The runtime's throttling counts (accepting invitations, joining through links),
# shared by every replica.
throttle_counts.to_metadata(metadata)

# -- departments and members ------------------------------------------------------------

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("invitation_ttl_s", sa.Integer, nullable=True),
)

# What membership knows of global accounts, from identity's events.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_normalised", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
)

# The addresses linked to accounts besides their login email, from identity's private
# ``AccountAddressChanged``: a linked address finds its account like the login email
# (already a member, an account membership knows).
account_addresses = sa.Table(
    "account_addresses",
    metadata,
    sa.Column("email_normalised", sa.Text, primary_key=True),
    sa.Column("account_id", UUID(as_uuid=True), nullable=False, index=True),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column(
        "department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), primary_key=True
    ),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("employee_id", sa.Text, nullable=True),
    sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("invited_email", sa.Text, nullable=True),
)
sa.Index("ix_memberships_account", memberships.c.account_id)
# Kept while someone is removed, so their ID comes back with them.
sa.Index(
    "ux_memberships_employee_id",
    memberships.c.department_id,
    memberships.c.employee_id,
    unique=True,
    postgresql_where=memberships.c.employee_id.is_not(None),
)

operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False),
    # The admin or operator who asked; NULL: someone registering (nobody signed in),
    # whose operation's unguessable id is what lets its outcome be read.
    sa.Column("requested_by", UUID(as_uuid=True), nullable=True),
    sa.Column("request", JSONB, nullable=False),
    sa.Column("result", JSONB, nullable=True),
    sa.Column("problem", JSONB, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    # The caller-scoped Idempotency-Key of the request that asked: a retry that runs
    # again (its process died before the answer was stored) finds this operation.
    sa.Column("idempotency_key", sa.Text, nullable=True),
)
sa.Index("ux_operations_idempotency_key", operations.c.idempotency_key, unique=True)
# The cap on "someone tried to register with your address" emails counts an address's
# refused registrations on every refusal: without this, each one read the whole table.
sa.Index(
    "ix_operations_failed_registrations",
    sa.func.lower(operations.c.request["email"].astext),
    operations.c.completed_at,
    postgresql_where=sa.and_(operations.c.kind == "register", operations.c.status == "failed"),
)


# -- invitations and the self-registration link ----------------------------------------

invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_normalised", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("invited_by", UUID(as_uuid=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("account_id", UUID(as_uuid=True), nullable=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    # The registration (an operation) that is using this invitation while identity makes
    # its account and its address is confirmed: nobody else registers through it
    # meanwhile. Released when that registration ends without joining.
    sa.Column("claimed_by", UUID(as_uuid=True), nullable=True),
    # The name pasted with the address ("Sam Two <sam@x.org>"), if any: the email's
    # greeting, the pending list, and the registration form's first guess.
    sa.Column("name", sa.Text, nullable=True),
)
# One pending invitation per address and department, even with two admins at once.
sa.Index(
    "ux_invitations_pending",
    invitations.c.department_id,
    invitations.c.email_normalised,
    unique=True,
    postgresql_where=invitations.c.status == "pending",
)
sa.Index("ix_invitations_department", invitations.c.department_id, invitations.c.created_at)

registration_links = sa.Table(
    "registration_links",
    metadata,
    sa.Column(
        "department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), primary_key=True
    ),
    sa.Column("link_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("allowed_domains", ARRAY(sa.Text), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


# -- groups ---------------------------------------------------------------------------

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_normalised", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.UniqueConstraint("department_id", "name_normalised", name="ux_groups_name"),
)

# Rows stay while a person is removed, so their groups come back with them.
group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column(
        "group_id",
        UUID(as_uuid=True),
        sa.ForeignKey("groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
sa.Index("ix_group_members_account", group_members.c.department_id, group_members.c.account_id)


# -- bulk imports ---------------------------------------------------------------------

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
    sa.Column("file_name", sa.Text, nullable=True),
    sa.Column("file_type", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    # running -> finished (every row has its outcome).
    sa.Column("status", sa.Text, nullable=False),
    # The file's header cells in order, and which of them each field was read from.
    sa.Column("headers", ARRAY(sa.Text), nullable=False),
    sa.Column("columns", JSONB, nullable=False),
    sa.Column("total_rows", sa.Integer, nullable=False),
    # Missing groups are created once, before any row is processed.
    sa.Column("groups_ready", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("counts", JSONB, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    # As ``operations.idempotency_key``: a retried upload finds its import.
    sa.Column("idempotency_key", sa.Text, nullable=True),
)
sa.Index("ix_imports_department", imports.c.department_id, imports.c.created_at)
sa.Index("ux_imports_idempotency_key", imports.c.idempotency_key, unique=True)
sa.Index("ix_imports_running", imports.c.created_at, postgresql_where=imports.c.status == "running")

# state: pending (to classify) -> requested (in a CreateAccounts batch) / invite /
# update -> done (``outcome`` and ``reason`` final).
import_rows = sa.Table(
    "import_rows",
    metadata,
    sa.Column(
        "import_id",
        UUID(as_uuid=True),
        sa.ForeignKey("imports.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("cells", ARRAY(sa.Text), nullable=False),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("email_normalised", sa.Text, nullable=True),
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("employee_id", sa.Text, nullable=True),
    sa.Column("groups", ARRAY(sa.Text), nullable=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("batch_id", UUID(as_uuid=True), nullable=True),
    sa.Column("account_id", UUID(as_uuid=True), nullable=True),
    sa.Column("changes", JSONB, nullable=True),
)
sa.Index(
    "ix_import_rows_open",
    import_rows.c.import_id,
    import_rows.c.state,
    postgresql_where=import_rows.c.state != "done",
)
sa.Index(
    "ix_import_rows_batch",
    import_rows.c.batch_id,
    postgresql_where=import_rows.c.batch_id.isnot(None),
)
