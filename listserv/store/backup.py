"""Backups: SQLite's online backup API for a file database; pg_dump's command for PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from listserv.errors import StorageError, UsageError


def sqlite_path(url: str) -> Path:
    """The file behind a sqlite:/// URL; a memory database has none to back up."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise UsageError(f"the database {url} lives in memory: there is no file to back up")
    path = Path(database)
    if not path.exists():
        raise StorageError(f"there is no database file at {path}: check [server] database")
    return path


def backup_sqlite(url: str, dest: Path) -> int:
    """Copy the SQLite database at url to dest, safely while the server writes; returns bytes.

    One backup step copies every page inside one read transaction, so the copy is one
    consistent moment; in WAL mode the server's writes go on meanwhile. The copy is written
    beside dest and renamed into place, so dest is never half a database.
    """
    source = sqlite_path(url)
    if dest.exists() and dest.resolve() == source.resolve():
        raise UsageError(f"{dest} is the database itself: name another file for the backup")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    src = sqlite3.connect(source, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            src.backup(copy)  # pages=-1: the whole database in one step
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
        finally:
            copy.close()
    except sqlite3.Error as exc:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise StorageError(f"cannot back up {source}: {exc}") from None
    finally:
        src.close()
    os.replace(partial, dest)
    return dest.stat().st_size


def pg_dump_command(url: str, dest: str) -> str:
    """The pg_dump line that backs up the PostgreSQL database at url to dest, without the
    password (pg_dump reads it from ~/.pgpass or PGPASSWORD).

    >>> pg_dump_command("postgresql+psycopg://ann:s3cret@db:5433/lists", "lists.dump")
    'pg_dump --format=custom --file=lists.dump postgresql://ann@db:5433/lists'
    """
    u = make_url(url)
    libpq = URL.create("postgresql", u.username, None, u.host, u.port, u.database, u.query)
    target = libpq.render_as_string(hide_password=False)
    return f"pg_dump --format=custom --file={shlex.quote(dest)} {shlex.quote(target)}"
