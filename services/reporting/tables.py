"""Every table of reporting's database in one MetaData (``migrations/env.py`` reads it),
and the users table's indexes with the key expressions its queries share.

The read model proper (departments, users, their counts, groups, member history, the
activity log) is written only by the projection (``projection/store.py``); the users
table (``users/store.py``), the record (``record/store.py``) and the activity log
(``activity/store.py``) read it. The training tables are the record's.
The outbox, inbox and relay-state tables are the runtime's (``messaging_tables``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from prodigy_users.runtime.revocation_store import token_cutoffs

from .rules import ROLES

metadata = sa.MetaData()

# The runtime's access-token cut-offs (``runtime.revocation_store``): the verifier
# refuses a token issued before its account's; declared by the runtime, compared here.
token_cutoffs.to_metadata(metadata)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _person() -> list[sa.Column[Any]]:
    return [
        sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    ]


# -- the read model of membership events ----------------------------------------------

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    _timestamp("updated_at"),
)

# One row per (department, person): the users table and the individual record.
# A removed person's row stays (``removed_at`` set) with their groups and employee
# ID, hidden everywhere, so a restore brings it back as it was.
users = sa.Table(
    "users",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # casefold(name), compared bytewise: the order does not depend on the DB locale.
    sa.Column("sort_name", sa.Text(collation="C"), nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("employee_id", sa.Text, nullable=True),
    # Group ids; names come from ``groups`` when read, so a rename touches one row.
    sa.Column(
        "groups",
        ARRAY(UUID(as_uuid=True)),
        nullable=False,
        server_default=sa.text("'{}'::uuid[]"),
    ),
    _timestamp("joined_at"),
    # When the latest event behind the row happened.
    _timestamp("updated_at"),
    _timestamp("removed_at", nullable=True),
)

# Each account's name and login email as identity last changed them (``AccountUpdated``),
# for accounts that changed: a membership event written before the change, folded
# after it (a replay reads identity's topic and membership's in no set order), still
# leaves the account's rows with the latest (``accounts.py``).
account_names = sa.Table(
    "account_names",
    metadata,
    sa.Column("account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("sort_name", sa.Text(collation="C"), nullable=True),
    sa.Column("email", sa.Text, nullable=True),
    _timestamp("name_changed_at", nullable=True),
    _timestamp("email_changed_at", nullable=True),
)

# How many current members each department has per role and status: the projection
# keeps it with the rows it changes, so the users table tells how many people a view
# has without counting up to 100,000 rows on every page (``users/store.py``).
user_counts = sa.Table(
    "user_counts",
    metadata,
    sa.Column("department_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("role", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, primary_key=True),
    sa.Column("members", sa.BigInteger, nullable=False),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("group_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    _timestamp("updated_at"),
)

# What happened to each membership, for the individual record. Keyed by the event,
# so applying an event twice records it once.
history = sa.Table(
    "member_history",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False),
    sa.Column("account_id", UUID(as_uuid=True), nullable=False),
    _timestamp("occurred_at"),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)
sa.Index(
    "member_history_by_member",
    history.c.department_id,
    history.c.account_id,
    history.c.occurred_at,
)

# The department's activity log: one row per change to a person, with who made it
# (``activity/rules.py``: a kind, and the account when there is one; names are read
# from ``users`` when shown). Keyed by the event like ``member_history``, whose entries
# take their actor from here. An invitation's rows name an address, not an account
# (``subject_id`` NULL, the address in ``details``): nobody may have an account yet.
activity = sa.Table(
    "activity",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("department_id", UUID(as_uuid=True), nullable=False),
    _timestamp("occurred_at"),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("subject_id", UUID(as_uuid=True), nullable=True),
    sa.Column("actor_kind", sa.Text, nullable=False),
    sa.Column("actor_id", UUID(as_uuid=True), nullable=True),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)
# Newest first, a page at a time: the log, and one person's changes in it.
sa.Index(
    "activity_by_department",
    activity.c.department_id,
    activity.c.occurred_at,
    activity.c.event_id,
)
sa.Index(
    "activity_by_person",
    activity.c.department_id,
    activity.c.subject_id,
    activity.c.occurred_at,
    activity.c.event_id,
)

# Which rebuild of the read model this is (no row: never rebuilt). ``prodigy-users
# replay reporting`` writes it when it switches over; running services watch it.
read_model = sa.Table(
    "read_model",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Text, nullable=False),
    _timestamp("built_at"),
    sa.Column("events", sa.BigInteger, nullable=False),
)

# -- the users table's sorts and search: the expressions and their indexes ------------
#
# Every sort is a keyset: ``(department, key..., account_id)`` has an index, and the
# page condition is one row comparison on the same expressions (``users/store.py``),
# so a page costs an index range scan however deep it is. The expressions have no
# bound parameters (constants are literal SQL): an expression index is only used
# when the query's expression is the very same, and a parameter is not a constant to
# the planner of a prepared statement.


def _sql(text: str) -> sa.TextClause:
    # Literal SQL, not a column: an index finds its table from the columns it names.
    return sa.text(text)


CURRENT = users.c.removed_at.is_(None)
# Emails and employee IDs sort in the database's collation (the embedded one is "C");
# names sort by ``sort_name``, folded in Python and compared bytewise.
EMAIL_KEY = sa.func.lower(users.c.email)
EMPLOYEE_ID_KEY = sa.func.lower(sa.func.coalesce(users.c.employee_id, _sql("''")))
NO_EMPLOYEE_ID = users.c.employee_id.is_(None)
HAS_EMPLOYEE_ID = users.c.employee_id.is_not(None)
# admin, officer, member (then anything else): by what the role may do, not
# alphabetically. Written as functions, not CASE: Alembic compares index expressions
# as PostgreSQL prints them, and it prints a CASE over several lines.
ROLE_RANK = sa.func.coalesce(
    sa.func.array_position(_sql("'{" + ",".join(ROLES) + "}'::text[]"), users.c.role),
    _sql(str(len(ROLES) + 1)),
)
# What ``q`` is looked for in: the folded name, the email and the employee ID, apart
# by a control character a search term never contains (``users.rules.search_term``).
SEARCH_TEXT = (
    users.c.sort_name.op("||")(_sql("chr(31)"))
    .op("||")(EMAIL_KEY)
    .op("||")(_sql("chr(31)"))
    .op("||")(EMPLOYEE_ID_KEY)
)

sa.Index("users_by_name", users.c.department_id, users.c.sort_name, users.c.account_id)
sa.Index("users_by_email", users.c.department_id, EMAIL_KEY, users.c.account_id)
sa.Index("users_by_role", users.c.department_id, ROLE_RANK, users.c.sort_name, users.c.account_id)
sa.Index(
    "users_by_status", users.c.department_id, users.c.status, users.c.sort_name, users.c.account_id
)
sa.Index(
    "users_by_employee_id",
    users.c.department_id,
    NO_EMPLOYEE_ID,
    EMPLOYEE_ID_KEY,
    users.c.account_id,
)
sa.Index(
    "users_by_employee_id_desc",
    users.c.department_id,
    HAS_EMPLOYEE_ID,
    EMPLOYEE_ID_KEY,
    users.c.account_id,
)
sa.Index("users_by_joined_at", users.c.department_id, users.c.joined_at, users.c.account_id)
sa.Index("users_by_updated_at", users.c.department_id, users.c.updated_at, users.c.account_id)
# A person's own record (GET /v1/me/record): their rows in every department.
sa.Index("users_by_account", users.c.account_id)
sa.Index(
    "users_search",
    SEARCH_TEXT.label("search"),
    postgresql_using="gin",
    postgresql_ops={"search": "gin_trgm_ops"},
)

# -- training (the record's) ----------------------------------------------------------
#
# Kept per (department, person), apart from the users table and without a foreign
# key to it: training events come on another topic than membership events, with no
# order between the two, so a person's training may be stored before they are a
# member, and stays while they are removed.

# One row per course on a person's plan; assigning it again replaces it.
plans = sa.Table(
    "training_plans",
    metadata,
    *_person(),
    sa.Column("course_id", sa.Text, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("plan", sa.Text, nullable=True),
    sa.Column("due_on", sa.Date, nullable=True),
    _timestamp("assigned_at"),
    # When the event behind the row happened: an older repeat changes nothing.
    _timestamp("updated_at"),
)

# One row per certificate: the transcript. Hours and credits are exact decimals,
# so the totals add up as the training platform's do.
completions = sa.Table(
    "training_completions",
    metadata,
    *_person(),
    sa.Column("certificate_id", sa.Text, primary_key=True),
    sa.Column("course_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("completed_on", sa.Date, nullable=False),
    sa.Column("hours", sa.Numeric, nullable=False),
    sa.Column("credits", sa.Numeric, nullable=False),
    _timestamp("updated_at"),
)

# Revoked certificates; the first revocation stands.
revocations = sa.Table(
    "training_revocations",
    metadata,
    *_person(),
    sa.Column("certificate_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    _timestamp("revoked_at"),
)

# Accounts an operator merged into another (identity's ``account_merged``): a training
# event that still names the merged account (the training system's view may lag) is
# the kept account's, so it is recorded under it.
merged_accounts = sa.Table(
    "merged_accounts",
    metadata,
    sa.Column("merged_account_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("kept_account_id", UUID(as_uuid=True), nullable=False),
    _timestamp("merged_at"),
)
