"""Alembic's environment: runs on the connection listserv hands it (no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from listserv.store import tables  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
)
with context.begin_transaction():
    context.run_migrations()
