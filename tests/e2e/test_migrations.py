"""Schema migrations with Alembic: a database made by an older listserv upgrades in place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from listserv.cli import app
from listserv.errors import ListservError
from listserv.store import open_store, schema
from tests.conftest import make_config
from tests.pgcluster import skip_reason

OLD_MAIN = Path(__file__).parents[1] / "data" / "migrations" / "main_cf73b60.sqlite"
TABLES = ("member", "post", "delivery", "outbound", "digest_run", "event", "token", "inbound")


def row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return schema.current(conn)
    finally:
        engine.dispose()


def test_database_made_by_main_before_migrations_upgrades_without_losing_a_row(tmp_path):
    """`listserv db upgrade` on a database created by main at cf73b60 keeps every row."""
    cfg = make_config(tmp_path)
    db = Path(cfg.database_url.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(OLD_MAIN, db)
    before = row_counts(cfg.database_url)
    assert before["member"] == 4 and before["delivery"] == 1 and before["digest_run"] == 1

    result = CliRunner().invoke(app, ["db", "upgrade", "--config", str(cfg.path)])

    assert result.exit_code == 0, result.output
    assert f"database is at schema revision {schema.head()}" in result.output
    assert row_counts(cfg.database_url) == before
    assert revision_of(cfg.database_url) == schema.head()
    with open_store(cfg.database_url).session() as s:  # the upgraded schema is usable
        assert (
            s.exec(text("SELECT address FROM member ORDER BY address")).first()[0]
            == "ann@example.com"
        )


def test_a_new_database_is_created_at_the_newest_revision(tmp_path):
    """A store opened on an empty database has every table and is stamped at the head."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    open_store(url).dispose()
    assert revision_of(url) == schema.head()
    assert set(TABLES) <= set(inspect(create_engine(url)).get_table_names())


def baseline_database(url: str) -> None:
    """A database with only the baseline revision applied, as an older listserv left it."""
    engine = create_engine(url)
    with engine.connect() as conn:
        command.upgrade(schema.alembic_config(conn), schema.BASELINE)
        conn.commit()
    engine.dispose()


def test_serve_refuses_a_database_that_is_behind_and_db_upgrade_fixes_it(tmp_path):
    """An older schema: opening the store says to run 'listserv db upgrade'; after it, it opens."""
    if schema.head() == schema.BASELINE:
        pytest.skip("there is no revision after the baseline yet")
    cfg = make_config(tmp_path)
    Path(cfg.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    baseline_database(cfg.database_url)
    with pytest.raises(ListservError, match="run 'listserv db upgrade'") as caught:
        open_store(cfg.database_url)
    assert caught.value.exit_code == 2
    result = CliRunner().invoke(app, ["db", "upgrade", "--config", str(cfg.path)])
    assert result.exit_code == 0, result.output
    assert "applying " in result.output
    open_store(cfg.database_url).dispose()


def test_auto_upgrade_upgrades_at_start(tmp_path):
    """open_store(upgrade=True), as serve does with [server] auto_upgrade, upgrades in place."""
    if schema.head() == schema.BASELINE:
        pytest.skip("there is no revision after the baseline yet")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    baseline_database(url)
    open_store(url, upgrade=True).dispose()
    assert revision_of(url) == schema.head()


_PG_SKIP = skip_reason()


@pytest.mark.skipif(_PG_SKIP is not None, reason=_PG_SKIP or "")
def test_postgresql_baseline_with_rows_upgrades_without_losing_a_row(pg_cluster):
    """On PostgreSQL: the baseline schema with members, posts, copies and digest runs upgrades."""
    url = pg_cluster.fresh_database("migrate_old")
    baseline_database(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO member (list_name, address, name, status, delivery, token, created_at,"
                " left_reason, bounce_score, probes_sent) VALUES ('networking', 'ann@example.com', '',"
                " 'active', 'regular', 't1', now(), '', 0, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO post (list_name, message_id, sender, from_header, subject, received_at,"
                " raw, status, reason, thread_key, in_reply_to) VALUES ('networking', '<p@x>',"
                " 'ann@example.com', '', 'hi', now(), 'x', 'accepted', '', '<p@x>', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO outbound (list_name, kind, post_id, created_at, raw)"
                " VALUES ('networking', 'post', 1, now(), 'x')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO delivery (outbound_id, member_id, recipient, token, state, attempts,"
                " created_at, next_attempt_at, last_error) VALUES (1, 1, 'ann@example.com', 't1',"
                " 'queued', 0, now(), now(), '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO digest_run (list_name, kind, period_start, period_end, created_at, posts)"
                " VALUES ('networking', 'regular', now(), now(), now(), 1)"
            )
        )
    engine.dispose()
    before = row_counts(url)
    open_store(url, upgrade=True).dispose()
    assert row_counts(url) == before
    assert revision_of(url) == schema.head()


def test_the_revisions_build_exactly_the_schema_the_tables_describe(tmp_path):
    """Upgrading an empty database revision by revision gives the tables' schema, no drift."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    engine = create_engine(url)
    with engine.connect() as conn:
        command.upgrade(schema.alembic_config(conn), "head")
        conn.commit()
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []
