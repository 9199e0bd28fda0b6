"""The store and delivery on PostgreSQL: tables, idempotent fan-out, concurrent claims, a full server."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import func, select

from listserv.delivery import Deliverer
from listserv.store import Store, members, open_store
from listserv.store import outbound as queue
from listserv.store.tables import Delivery
from tests.conftest import DOMAIN, FakeResolver, make_config, make_message, send, wait_for

TABLES = {
    "member",
    "post",
    "inbound",
    "outbound",
    "delivery",
    "token",
    "event",
    "digest_run",
    "list_state",
    "reply_count",
}


@pytest.fixture
def pg_url(pg_cluster) -> str:  # noqa: F811
    return pg_cluster.fresh_database(f"store_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = open_store(pg_url)
    yield store
    store.dispose()


def seed(store: Store, count: int) -> int:
    """count active regular members plus one digest and one left member; returns an outbound id."""
    now = datetime.now(UTC)
    with store.session() as s:
        members.ensure_list(s, "networking", now)
        for i in range(count):
            m = members.upsert_member(
                s, "networking", f"m{i:04d}@example.org", now, status="pending"
            )
            members.activate(s, m, now, "test")
        members.upsert_member(
            s, "networking", "digest@example.org", now, status="active", delivery="digest"
        )
        gone = members.upsert_member(s, "networking", "gone@example.org", now, status="active")
        members.remove(s, gone, now, "test")
        out = queue.add_outbound(
            s,
            "networking",
            "post",
            make_message("""
            From: ann@example.com
            Subject: [networking] hello

            Hello.
            """),
            now,
        )
        assert out.id is not None
        return out.id


def delivery_count(store: Store) -> int:
    with store.session() as s:
        return s.exec(select(func.count()).select_from(Delivery)).one()


def test_create_tables_makes_every_table(pg_store):
    """open_store creates all tables on PostgreSQL, and doing it again is harmless."""
    assert pg_store.dialect == "postgresql"
    assert TABLES <= set(inspect(pg_store.engine).get_table_names())
    pg_store.prepare()
    assert pg_store.ping()


def test_members_round_trip(pg_store):
    """Members added on PostgreSQL are found again, counted by status and streamed in order."""
    seed(pg_store, 3)
    with pg_store.session() as s:
        assert members.count_members(s, "networking") == {"active": 4, "left": 1}
        found = members.get_member(s, "networking", "m0001@example.org")
        assert found is not None and found.status == "active" and len(found.token) == 40
        assert members.member_by_token(s, found.token).address == "m0001@example.org"  # type: ignore[union-attr]
        assert [m.address for m in members.list_members(s, "networking", "active")][:2] == [
            "digest@example.org",
            "m0000@example.org",
        ]


def test_fan_out_twice_queues_each_member_once(pg_store):
    """queue_to_members adds one row per active regular member; repeating it adds nothing."""
    out_id = seed(pg_store, 25)
    now = datetime.now(UTC)
    with pg_store.session() as s:
        assert queue.queue_to_members(s, out_id, "networking", ("regular",), now) == 25
    with pg_store.session() as s:
        assert queue.queue_to_members(s, out_id, "networking", ("regular",), now) == 0
    assert delivery_count(pg_store) == 25
    with pg_store.session() as s:
        recipients = set(s.exec(select(Delivery.recipient)))
    assert "digest@example.org" not in recipients and "gone@example.org" not in recipients


def test_concurrent_claim_loops_never_take_the_same_row(pg_store, pg_url):
    """Two workers (own engines, own threads) claiming in small batches split the queue with no overlap."""
    out_id = seed(pg_store, 400)
    now = datetime.now(UTC)
    with pg_store.session() as s:
        queue.queue_to_members(s, out_id, "networking", ("regular",), now)
    stores = [open_store(pg_url), open_store(pg_url)]
    claimed: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(1000):  # bounded: 400 rows in batches of 7 need ~60 rounds
                with stores[n].session() as s:
                    batch = queue.claim_deliveries(s, datetime.now(UTC), timedelta(minutes=2), 7)
                if not batch:
                    return
                claimed[n].extend(c.id for c in batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for store in stores:
        store.dispose()
    assert errors == []
    assert not any(t.is_alive() for t in threads)
    first, second = set(claimed[0]), set(claimed[1])
    assert len(claimed[0]) == len(first) and len(claimed[1]) == len(second)
    assert first.isdisjoint(second)
    assert len(first | second) == 400
    with pg_store.session() as s:
        states = set(s.exec(select(Delivery.state)))
        attempts = set(s.exec(select(Delivery.attempts)))
    assert states == {"sending"} and attempts == {1}


async def test_two_deliverers_on_one_database_send_each_copy_once(pg_store, pg_url, tmp_path, sink):
    """Two Deliverers (separate engines) running at once deliver every queued copy exactly once."""
    out_id = seed(pg_store, 60)
    with pg_store.session() as s:
        queue.queue_to_members(s, out_id, "networking", ("regular",), datetime.now(UTC))
    cfg = make_config(tmp_path, relay=f"smtp://127.0.0.1:{sink.port}", database=pg_url)
    stores = [open_store(pg_url), open_store(pg_url)]
    try:
        deliverers = [Deliverer(store, lambda: cfg) for store in stores]
        handled = await asyncio.gather(*(d.deliver_due() for d in deliverers))
    finally:
        for store in stores:
            store.dispose()
    assert sum(handled) == 60
    assert len(sink.messages) == 60
    assert len({m.rcpt for m in sink.messages}) == 60
    with pg_store.session() as s:
        assert set(s.exec(select(Delivery.state))) == {"sent"}
    first = sink.to("m0000@example.org")[0]
    assert first.mail_from == "networking-bounces+m0000=example.org@lists.example.org"
    assert first.msg["List-Unsubscribe"].startswith("<http://127.0.0.1:8080/u/")


async def test_server_on_postgresql_delivers_a_post_to_every_member(pg_url, tmp_path: Path, sink):
    """A full in-process Server with database = PostgreSQL accepts a post and every member gets it."""
    from listserv.dmarc import DmarcPolicies
    from listserv.server import Server

    cfg = make_config(tmp_path, relay=f"smtp://127.0.0.1:{sink.port}", database=pg_url)
    srv = Server(cfg, dmarc=DmarcPolicies(FakeResolver()))
    await srv.start()
    try:
        assert srv.store.dialect == "postgresql"
        addresses = ["ann@example.com", "bob@example.net", "cy@example.org"]
        now = datetime.now(UTC)
        with srv.store.session() as s:
            for address in addresses:
                members.activate(
                    s,
                    members.upsert_member(s, "networking", address, now, status="pending"),
                    now,
                    "test",
                )
        raw = make_message(f"""
            From: Ann Lee <ann@example.com>
            To: networking@{DOMAIN}
            Subject: Postgres works
            Message-ID: <pg-1@example.com>

            Hello from PostgreSQL.
            """)
        assert (
            await asyncio.to_thread(
                send, srv.smtp_port, "ann@example.com", f"networking@{DOMAIN}", raw
            )
            == {}
        )
        await wait_for(lambda: len(sink.messages) == 3, what="three copies")
        assert sorted(m.rcpt for m in sink.messages) == addresses
        assert all(m.msg["Subject"] == "[networking] Postgres works" for m in sink.messages)
    finally:
        await srv.stop()


async def test_sent_marks_in_the_event_loop_store_what_the_orm_path_stores(pg_store):
    """write_async + mark_sent_async (delivery's group commit on PostgreSQL, no thread) leave
    each row as mark_sent does; a connection that fails is dropped and the next call opens a
    new one."""
    out_id = seed(pg_store, 6)
    now = datetime.now(UTC)
    with pg_store.session() as s:
        queue.queue_to_members(s, out_id, "networking", ("regular",), now)
        ids = [d.id for d in s.exec(select(Delivery).order_by(Delivery.id))]
    when = datetime(2026, 12, 2, 13, 45, 6, 789012, tzinfo=UTC)
    with pg_store.core() as conn:
        queue.mark_sent(conn, ids[:3], when)
    assert await pg_store.write_async(lambda c: queue.mark_sent_async(c, ids[3:5], when))

    async def broken(conn):  # type: ignore[no-untyped-def]
        await conn.execute("SELECT no_such_column FROM delivery")

    with pytest.raises(Exception, match="no_such_column"):
        await pg_store.write_async(broken)
    assert await pg_store.write_async(lambda c: queue.mark_sent_async(c, ids[5:], when))
    with pg_store.reader() as s:
        rows = list(s.exec(select(Delivery).order_by(Delivery.id)))
    assert [r.state for r in rows] == ["sent"] * 6
    assert {r.sent_at for r in rows} == {when}
    assert {(r.claimed_until, r.last_error) for r in rows} == {(None, "")}


async def test_write_async_is_for_postgresql_only(cfg):
    store = open_store(cfg.database_url)
    try:
        called = []

        async def fn(conn):  # type: ignore[no-untyped-def]
            called.append(conn)

        assert not await store.write_async(fn) and called == []
    finally:
        store.dispose()
