"""`listserv db backup FILE`: an online copy of a live SQLite database; pg_dump advice otherwise."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

from typer.testing import CliRunner

from listserv.cli import app
from listserv.store import members, open_store, schema
from tests.conftest import make_config


def test_backup_of_a_live_database_while_writes_go_on_holds_the_rows(tmp_path):
    """A backup taken while members are being added is a whole database with every row that
    was there before it started."""
    cfg = make_config(tmp_path)
    store = open_store(cfg.database_url)
    with store.session() as s:
        for i in range(200):
            members.upsert_member(
                s, "networking", f"early{i}@example.com", datetime.now(UTC), status="active"
            )
    stop, written = threading.Event(), []

    def keep_writing() -> None:
        while not stop.is_set():
            with store.session() as s:
                address = f"late{len(written)}@example.com"
                members.upsert_member(s, "networking", address, datetime.now(UTC), status="active")
            written.append(address)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 20:  # writes are going on
            stop.wait(0.01)
        copy, before = tmp_path / "backups" / "listserv.db", len(written)
        result = CliRunner().invoke(app, ["db", "backup", str(copy), "--config", str(cfg.path)])
        while len(written) < before + 20:  # and go on after it
            stop.wait(0.01)
    finally:
        stop.set()
        writer.join()
        store.dispose()

    assert result.exit_code == 0, result.output
    assert f"to {copy}" in result.output
    db = sqlite3.connect(copy)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        found = {a for (a,) in db.execute("SELECT address FROM member")}
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        db.close()
    assert {f"early{i}@example.com" for i in range(200)} <= found
    assert {f"late{i}@example.com" for i in range(before)} <= found
    assert revision == (schema.head(),)


def test_backup_of_a_postgresql_database_prints_the_pg_dump_line_without_the_password(tmp_path):
    """PostgreSQL is backed up with pg_dump: one line with the command for the configured
    database, no password in it, exit 1 because no copy was made."""
    cfg = make_config(
        tmp_path, database="postgresql+psycopg://ann:s3cret@db.example.org:5433/lists"
    )

    result = CliRunner().invoke(app, ["db", "backup", "lists.dump", "--config", str(cfg.path)])

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert (
        "pg_dump --format=custom --file=lists.dump postgresql://ann@db.example.org:5433/lists"
        in result.stderr
    )
    assert "s3cret" not in result.output
