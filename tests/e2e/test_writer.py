"""The one writer (issue 12): group commit, 250 after commit, no self-deadlock, nothing lost."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlmodel import Session

from listserv import inbound as inbound_mod
from listserv.states import InboundState
from listserv.store import inbound, open_store
from listserv.store.tables import Inbound
from tests.conftest import add_members, asend, mails_to, make_message

LIST = "networking@lists.example.org"


def post(subject: str) -> bytes:
    return make_message(
        f"From: ann@example.com\nTo: {LIST}\nSubject: {subject}\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.com>\n\nHi all.\n"
    )


def save_row(subject: str) -> Any:
    def job(s: Session) -> int:
        return inbound.save_many(
            s, [("ann@example.com", [LIST], post(subject))], datetime.now(UTC)
        )[0]

    return job


def stored_rows(url: str) -> int:
    """How many inbound messages a fresh connection sees as committed."""
    other = open_store(url)
    try:
        with other.reader() as s:
            return len(s.execute(select(Inbound)).scalars().all())
    finally:
        other.dispose()


def test_saves_waiting_for_the_writer_share_one_commit_and_resolve_only_after_it(cfg):
    """Saves of accepted mail (urgent jobs) queued while the writer is busy join its round:
    one transaction, one commit, and none of their futures resolves before that commit."""
    store = open_store(cfg.database_url)
    try:
        gate = threading.Event()

        def busy(s: Session) -> bool:
            s.execute(select(Inbound.id))  # the round has a transaction to commit
            return gate.wait(5)

        first = store.submit(busy)
        while not first.running() and not first.done():
            time.sleep(0.001)
        futures = [store.submit(save_row(f"post {i}"), urgent=True) for i in range(5)]
        commits: list[list[bool]] = []
        event.listen(
            store.engine, "commit", lambda conn: commits.append([f.done() for f in futures])
        )
        gate.set()
        ids = [f.result(timeout=10) for f in futures]
        assert len(set(ids)) == 5
        assert first.result() is True
        assert commits == [[False] * 5]
        assert stored_rows(cfg.database_url) == 5
    finally:
        store.dispose()


def test_a_job_submitted_from_the_writer_thread_is_refused_not_deadlocked(cfg):
    """A writer job that submits another (and would wait on itself for ever) gets an error."""
    store = open_store(cfg.database_url)
    try:
        nested = store.submit(lambda s: store.submit(lambda s2: 1).result(timeout=2))
        with pytest.raises(RuntimeError, match="cannot submit"):
            nested.result(timeout=10)
        assert store.submit(lambda s: 2).result(timeout=10) == 2  # the writer still runs
    finally:
        store.dispose()


async def test_a_post_whose_commit_fails_is_answered_451_never_250(
    server_factory, sink, monkeypatch
):
    """The 250 follows the commit of the message's row: when that commit fails the client gets
    451 and nothing is kept; once commits work again the same post gets 250 and is stored."""
    srv = await server_factory()
    saving = threading.Event()
    real_save = inbound.save_claimed

    def save_claimed(*args, **kw):  # type: ignore[no-untyped-def]
        saving.set()
        return real_save(*args, **kw)

    doomed = [OSError("disk full")]  # the first round holding a save fails at its commit

    def fail_a_round_with_a_save(conn: Any) -> None:
        if saving.is_set() and doomed:
            raise doomed.pop()

    monkeypatch.setattr(inbound_mod.inbound, "save_claimed", save_claimed)
    event.listen(srv.store.engine, "commit", fail_a_round_with_a_save)
    with pytest.raises(smtplib.SMTPResponseException) as caught:
        await asend(srv.smtp_port, "ann@example.com", LIST, post("Doomed"))
    assert caught.value.smtp_code == 451
    assert stored_rows(srv.cfg.database_url) == 0
    await asend(srv.smtp_port, "ann@example.com", LIST, post("Kept"))
    assert stored_rows(srv.cfg.database_url) == 1


async def test_a_failed_dispatch_job_keeps_its_batch_for_the_next_pass(
    server_factory, sink, monkeypatch
):
    """When the writer job handling a batch fails as a whole (say its commit), the messages
    handed over in memory are handled on the next pass, not left to wait out their lease."""
    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")
    real = inbound_mod.InboundWorker.handle
    calls = []

    def flaky(self, s, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OSError("commit failed")
        return real(self, s, *args, **kwargs)

    monkeypatch.setattr(inbound_mod.InboundWorker, "handle", flaky)
    await asend(srv.smtp_port, "ann@example.com", LIST, post("Second chance"))
    [copy] = await mails_to(sink, "bob@example.com")
    assert copy["Subject"] == "[networking] Second chance"
    assert len(calls) >= 2


def dead_instance() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"abc123@{socket.gethostname()}:{child.pid}"


async def test_mail_saved_claimed_by_a_process_that_died_is_handled_at_the_next_start(
    server_factory, sink, tmp_path: Path
):
    """A message saved already claimed and handed over in memory, whose process was killed
    before handling it, is taken back and delivered at once by the next start (not after the
    five-minute lease)."""
    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")
    await srv.stop()
    lost: list[Inbound] = []  # the dead process's memory
    writer = inbound_mod.Writer(srv.store, lost.append, dead_instance())
    await writer.save("ann@example.com", [LIST], post("Saved then killed"))
    assert len(lost) == 1 and lost[0].claimed_by.startswith("abc123@")
    srv.store.dispose()
    await server_factory(folder=tmp_path)
    [copy] = await mails_to(sink, "bob@example.com")
    assert copy["Subject"] == "[networking] Saved then killed"


async def test_mail_handed_over_but_not_handled_is_released_at_a_clean_stop(
    server_factory, sink, monkeypatch
):
    """At a stop, messages handed to the worker in memory but not yet handled lose their claim,
    so the next start (or another instance) handles them without waiting for the lease."""
    srv = await server_factory()
    monkeypatch.setattr(srv.inbound, "process", lambda: 0)  # the worker is busy elsewhere
    await asend(srv.smtp_port, "ann@example.com", LIST, post("Not yet handled"))
    assert len(srv.inbound.handed) == 1
    await srv.stop()
    other = open_store(srv.cfg.database_url)
    try:
        with other.reader() as s:
            [row] = s.execute(select(Inbound)).scalars().all()
        assert row.state == InboundState.NEW
        assert (row.claimed_by, row.claimed_until) == ("", None)
    finally:
        other.dispose()


def queue_copies(store: Any, count: int) -> None:
    """One post queued to m0..m{count-1}@example.com: delivery rows 1..count."""
    from listserv.store import outbound

    with store.session() as s:
        out = outbound.add_outbound(s, "networking", "post", post("x"), datetime.now(UTC))
        assert out.id is not None
        recipients = [(f"m{i}@example.com", "", None) for i in range(count)]
        outbound.queue_to_addresses(s, out.id, recipients, datetime.now(UTC))


def test_an_unflushed_commit_is_kept_and_its_connection_flushes_again_after(cfg):
    """Delivery's "sent" marks commit without waiting for the disk (synchronous=NORMAL), which
    a process dying cannot undo; the pooled connection goes back to FULL for whoever is next."""
    from listserv.store import outbound

    store = open_store(cfg.database_url)
    try:
        queue_copies(store, 1)
        with store.core(flushed=False) as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            raw = conn.connection.driver_connection
            outbound.mark_sent(conn, [1], datetime.now(UTC))
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
        other = open_store(cfg.database_url)
        try:
            with other.reader() as s:
                assert outbound.counts_by_state(s) == {"sent": 1}
        finally:
            other.dispose()
    finally:
        store.dispose()


def test_write_now_commits_at_once_or_not_at_all_and_never_waits(cfg):
    """write_now (delivery's sent marks, from the event loop) commits when the write lock is
    free, and returns False at once, doing nothing, while this process's writer or another
    process holds it."""
    import sqlite3

    from listserv.store import outbound

    store = open_store(cfg.database_url)
    try:
        queue_copies(store, 3)

        def mark(ids: list[int]) -> Any:
            return lambda db: outbound.mark_sent_now(db, ids, datetime.now(UTC))

        assert store.write_now(mark([1]))
        held, release = threading.Event(), threading.Event()

        def writer_busy() -> None:
            with store.session():
                held.set()
                release.wait(10)

        busy = threading.Thread(target=writer_busy)
        busy.start()
        held.wait(10)
        assert not store.write_now(mark([2]))  # waiting would hang: the writer lets go after
        release.set()
        busy.join()
        other = sqlite3.connect(cfg.database_url.removeprefix("sqlite:///"))
        other.isolation_level = None
        other.execute("BEGIN IMMEDIATE")  # the CLI, say, writing
        assert not store.write_now(mark([3]))
        other.execute("ROLLBACK")
        other.close()
        with store.reader() as s:
            assert outbound.counts_by_state(s) == {"sent": 1, "queued": 2}
    finally:
        store.dispose()


def test_sent_marks_on_the_bare_connection_store_what_the_orm_path_stores(cfg):
    """mark_sent_now (write_now's sqlite3 statement) leaves each row exactly as mark_sent does:
    state, sent_at as SQLAlchemy stores and reads it, the claim and the error cleared; ids past
    a padded width and repeated ids are fine."""
    from listserv.store import outbound
    from listserv.store.tables import Delivery

    store = open_store(cfg.database_url)
    try:
        queue_copies(store, 8)
        with store.session() as s:
            s.connection().exec_driver_sql(
                "UPDATE delivery SET state='sending', last_error='x', claimed_until=created_at"
            )
        when = datetime(2026, 12, 2, 13, 45, 6, 789012, tzinfo=UTC)
        with store.core() as conn:
            outbound.mark_sent(conn, [1, 2, 3], when)
        assert store.write_now(lambda db: outbound.mark_sent_now(db, [4, 5, 6, 4], when))
        with store.reader() as s:
            rows = {d.id: d for d in s.exec(select(Delivery)).scalars()}
        by_orm, by_now = [rows[i] for i in (1, 2, 3)], [rows[i] for i in (4, 5, 6)]
        for row in by_orm + by_now:
            assert (row.state, row.claimed_until, row.last_error) == ("sent", None, "")
        assert {r.sent_at for r in by_now} == {r.sent_at for r in by_orm} == {by_orm[0].sent_at}
        assert by_orm[0].sent_at is not None
        assert by_orm[0].sent_at.replace(tzinfo=UTC) == when
        assert {rows[i].state for i in (7, 8)} == {"sending"}
    finally:
        store.dispose()


def test_write_now_replaces_a_connection_that_cannot_begin(cfg):
    """write_now's own connection broken (closed under it, say): that call raises, and the next
    one opens a new connection and commits, instead of failing for ever."""
    import sqlite3

    from listserv.store import outbound

    store = open_store(cfg.database_url)
    try:
        queue_copies(store, 1)
        assert store.write_now(lambda db: None)
        assert store._now is not None
        store._now.close()
        with pytest.raises(sqlite3.Error):
            store.write_now(lambda db: None)
        assert store.write_now(lambda db: outbound.mark_sent_now(db, [1], datetime.now(UTC)))
        with store.reader() as s:
            assert outbound.counts_by_state(s) == {"sent": 1}
    finally:
        store.dispose()
