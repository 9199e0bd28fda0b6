"""Delivery claims name their instance; daily maintenance runs once across instances.

Revision ID: 0004_delivery_claims
Revises: 0003_delivery_recipient
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004_delivery_claims"
down_revision = "0003_delivery_recipient"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "delivery",
        sa.Column(
            "claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""
        ),
    )
    op.create_table(
        "maintenance_run",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("instance", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("maintenance_run")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("claimed_by")
