"""Inbound retries: attempts, the next try, and which instance holds a claim (issue 10).

Revision ID: 0005_inbound_retries
Revises: 0004_delivery_claims
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0005_inbound_retries"
down_revision = "0004_delivery_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "inbound", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "inbound",
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.add_column(
        "inbound",
        sa.Column(
            "claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("inbound") as batch:
        batch.drop_column("claimed_by")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
