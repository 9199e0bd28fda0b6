"""An index on delivery (recipient, state): a bounce counts only for a copy actually sent.

Revision ID: 0003_delivery_recipient
Revises: 0002_fields
"""

from __future__ import annotations

from alembic import op

revision = "0003_delivery_recipient"
down_revision = "0002_fields"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_delivery_recipient", "delivery", ["recipient", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_delivery_recipient", table_name="delivery")
