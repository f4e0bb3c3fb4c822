"""An email is queued once per (source event, template, recipient): one event may ask
for many emails (``PasswordLinksIssued``, a bulk upload's credentials links).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new key holds wherever the old one did (it only adds a column), so no row
    # can violate it.
    op.create_unique_constraint(
        "emails_source_template_recipient", "emails", ["source_event_id", "template", "recipient"]
    )
    op.drop_constraint("emails_source_template", "emails", type_="unique")


def downgrade() -> None:
    # Only possible while no event has asked for two emails of one template.
    op.create_unique_constraint("emails_source_template", "emails", ["source_event_id", "template"])
    op.drop_constraint("emails_source_template_recipient", "emails", type_="unique")
