"""Alembic migrations: one revision per schema change, applied by `listserv db upgrade`."""
