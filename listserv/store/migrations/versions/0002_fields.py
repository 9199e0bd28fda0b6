"""Fields (issue 13): a member's field and the fields a post is tagged with.

Revision ID: 0002_fields
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002_fields"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("member") as batch:
        batch.add_column(
            sa.Column(
                "field", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""
            )
        )
    with op.batch_alter_table("post") as batch:
        batch.add_column(
            sa.Column(
                "fields", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("post") as batch:
        batch.drop_column("fields")
    with op.batch_alter_table("member") as batch:
        batch.drop_column("field")
