"""Schema revisions: a fresh database starts at the newest, an older one is upgraded by Alembic."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from listserv.errors import ListservError

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"  # the schema listserv created before it had migrations
_LOCK_ID = 0x6C697374  # 'list': serialises schema work of instances sharing a PostgreSQL


class SchemaBehind(ListservError):
    """The database is older than this listserv."""

    exit_code = 2


def alembic_config(conn: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    """The newest revision this listserv knows."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None
    return found


def current(conn: Connection) -> str | None:
    """The database's revision: None when it is empty, the baseline when it predates migrations."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None and inspect(conn).has_table("member"):
        return BASELINE
    return revision


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
            conn.commit()
        try:
            yield conn
        finally:
            if conn.dialect.name == "postgresql":
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
                conn.commit()


def prepare(engine: Engine, url: str, upgrade: bool = False) -> None:
    """Create a fresh database at the newest revision; refuse (or upgrade) an older one."""
    with _schema_lock(engine) as conn:
        revision = current(conn)
        conn.rollback()  # end the read; each change below runs in a transaction of its own
        if revision is None:
            with conn.begin():
                SQLModel.metadata.create_all(conn)
                command.stamp(alembic_config(conn), head())
            return
        if revision == head():
            return
        if not upgrade:
            raise SchemaBehind(
                f"the database {url} is at schema revision {revision} and this listserv needs "
                f"{head()}: run 'listserv db upgrade' (or set [server] auto_upgrade = true)"
            )
    upgrade_to_head(engine)


def pending(engine: Engine) -> list[str]:
    """The revisions an upgrade would apply, oldest first."""
    with engine.connect() as conn:
        revision = current(conn)
    if revision is None:
        return []
    script = ScriptDirectory.from_config(alembic_config())
    steps = [r.revision for r in script.iterate_revisions(head(), revision)]
    return [r for r in reversed(steps) if r != revision]


def upgrade_to_head(engine: Engine, progress: Callable[[str], None] = lambda line: None) -> int:
    """Apply every pending revision, one transaction each; returns how many were applied."""
    steps = pending(engine)
    script = ScriptDirectory.from_config(alembic_config())
    with _schema_lock(engine) as conn:
        unstamped = current(conn) == BASELINE and (
            MigrationContext.configure(conn).get_current_revision() is None
        )
        conn.rollback()
        if unstamped:  # made before migrations existed: it is the baseline
            with conn.begin():
                command.stamp(alembic_config(conn), BASELINE)
        for step in steps:
            doc = (script.get_revision(step).doc or "").strip().splitlines()[0:1]
            progress(f"applying {step}: {doc[0] if doc else ''}".rstrip(": "))
            with conn.begin():
                command.upgrade(alembic_config(conn), step)
    return len(steps)
