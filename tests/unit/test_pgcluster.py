"""Tests for the throwaway PostgreSQL cluster helper (tests/pgcluster.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.pgcluster import PgCluster, pid_running, skip_reason

_SKIP = skip_reason()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def test_throwaway_cluster_accepts_queries():
    with PgCluster() as pg:
        assert pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/listserv_test"
        tmpdir = pg.tmpdir
        postmaster_pid = int((pg.datadir / "postmaster.pid").read_text().splitlines()[0])

        engine = create_engine(pg.url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("select 1")).scalar_one() == 1
                assert conn.execute(text("select current_database()")).scalar_one() == (
                    "listserv_test"
                )
                assert conn.execute(text("show listen_addresses")).scalar_one() == "127.0.0.1"
            with engine.begin() as conn:
                conn.execute(text("create table members (id serial primary key, email text)"))
                conn.execute(
                    text("insert into members (email) values (:e)"),
                    [{"e": "ann@example.org"}, {"e": "bob@example.org"}],
                )
            with engine.connect() as conn:
                emails = conn.execute(text("select email from members order by id")).scalars()
                assert list(emails) == ["ann@example.org", "bob@example.org"]
        finally:
            engine.dispose()

    # Leaving the context stops the server and removes its directory.
    assert not tmpdir.exists()
    assert not pid_running(postmaster_pid)


def test_fresh_database_is_isolated(pg_cluster):
    url_a = pg_cluster.fresh_database("isolation_a")
    url_b = pg_cluster.fresh_database("isolation_b")
    assert url_a.endswith(f":{pg_cluster.port}/isolation_a")
    assert url_b.endswith(f":{pg_cluster.port}/isolation_b")

    engine_a = create_engine(url_a)
    engine_b = create_engine(url_b)
    engine_main = create_engine(pg_cluster.url)
    try:
        with engine_a.begin() as conn:
            conn.execute(text("create table only_in_a (x int)"))
            conn.execute(text("insert into only_in_a values (42)"))
        with engine_a.connect() as conn:
            assert conn.execute(text("select x from only_in_a")).scalar_one() == 42
        assert "only_in_a" not in inspect(engine_b).get_table_names()
        assert "only_in_a" not in inspect(engine_main).get_table_names()
    finally:
        for engine in (engine_a, engine_b, engine_main):
            engine.dispose()

    with pytest.raises(ValueError):
        pg_cluster.fresh_database('x"; drop database listserv_test; --')
