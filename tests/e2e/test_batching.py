"""Mail in a steady stream is handled in batches (issue 12): messages arriving together share a
pass, dispatch claims the copies it queued in its own commit and hands them to delivery, a
backlog in the store is claimed pass after pass, and a long batch is split into short writer
jobs without handling any message twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from listserv import inbound as inbound_mod
from listserv.states import CopyState, InboundState
from listserv.store import inbound
from listserv.store.tables import Delivery, Inbound
from tests.conftest import add_members, asend, mails_to, make_message, wait_for

LIST = "networking@lists.example.org"


def post(subject: str) -> bytes:
    return make_message(
        f"From: ann@example.com\nTo: {LIST}\nSubject: {subject}\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.com>\n\nHi all.\n"
    )


def count_calls(monkeypatch: Any, obj: object, name: str) -> list[Any]:
    """Wrap obj.name so every call's arguments are recorded; returns the record."""
    real = getattr(obj, name)
    calls: list[Any] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)
    return calls


def count_passes(monkeypatch: Any, srv: Any) -> list[int]:
    """How many handed-over messages each inbound pass of srv starts with (empty ones left out)."""
    passes: list[int] = []
    real = srv.inbound.process

    def process() -> int:
        if srv.inbound.handed:
            passes.append(len(srv.inbound.handed))
        return real()

    monkeypatch.setattr(srv.inbound, "process", process)
    return passes


async def test_copies_a_dispatch_queues_go_out_without_a_claim_of_delivery_s_own(
    server_factory, sink, monkeypatch
):
    """The writer job that dispatches a post also claims its copies and hands them, with the
    decorated body, to delivery: a post reaches the members even if delivery never claims."""
    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")

    async def no_claim(lease: Any) -> list[Any]:
        return []

    monkeypatch.setattr(srv.deliverer, "_claim", no_claim)
    loads = count_calls(monkeypatch, srv.deliverer, "_load_outbound")
    await asend(srv.smtp_port, "ann@example.com", LIST, post("Handed over"))
    [copy] = await mails_to(sink, "bob@example.com")
    assert copy["Subject"] == "[networking] Handed over"
    assert loads == []  # the body came with the copies, not from a read of the store
    await wait_for(lambda: not srv.deliverer.handed, what="the handed copies taken")
    with srv.store.reader() as s:
        states = {d.recipient: d.state for d in s.execute(select(Delivery)).scalars()}
    assert states == {"ann@example.com": CopyState.SENT, "bob@example.com": CopyState.SENT}


async def test_a_stream_of_messages_is_gathered_into_one_pass_but_a_lone_one_is_not_held(
    server_factory, sink, monkeypatch
):
    """The first message after a quiet spell is handled at once; once messages come close
    together, the worker waits GATHER for more so they share one pass (one writer job)."""
    monkeypatch.setattr(inbound_mod, "GATHER", 1.0)
    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")
    passes = count_passes(monkeypatch, srv)
    for subject in ("First", "Second", "Third"):
        await srv.writer.save("ann@example.com", [LIST], post(subject))
        await asyncio.sleep(0.2)  # longer than a pass: without gathering each goes alone
    await mails_to(sink, "bob@example.com", 3)
    assert passes == [1, 2]


async def test_a_stream_that_does_not_pause_is_still_dispatched_every_hold(
    server_factory, sink, monkeypatch
):
    """Intake goes first while a stream lasts, but its messages wait at most HOLD: a stream
    that never pauses is dispatched in passes as it goes, not only at its end."""
    monkeypatch.setattr(inbound_mod, "GATHER", 10.0)  # no pause ever ends this stream
    monkeypatch.setattr(inbound_mod, "HOLD", 0.3)
    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")
    passes = count_passes(monkeypatch, srv)
    for i in range(8):
        await srv.writer.save("ann@example.com", [LIST], post(f"Stream {i}"))
        await asyncio.sleep(0.1)
    during = len(passes)
    await mails_to(sink, "bob@example.com", 8)
    assert during >= 2  # the lone first message, then at least one pass HOLD later
    assert sum(passes) == 8


def test_a_backlog_in_the_store_is_claimed_again_at_once_while_claims_come_back_full(cfg, store):
    """Messages saved unclaimed (a restart's, released ones) are claimed MAX_HANDED at a time,
    pass after pass while there are more, not one claim a second."""
    n = 2 * inbound_mod.MAX_HANDED + 5
    saves = [("ann@example.com", [LIST], post(f"Backlog {i}")) for i in range(n)]
    with store.session() as s:
        inbound.save_many(s, saves, datetime.now(UTC))
    worker = inbound_mod.InboundWorker(store, lambda: cfg, None, deliverer=None)  # type: ignore[arg-type]
    sizes = [len(worker.take()) for _ in range(4)]
    assert sizes == [inbound_mod.MAX_HANDED, inbound_mod.MAX_HANDED, 5, 0]


async def test_a_batch_longer_than_a_writer_job_goes_on_in_the_next_job_not_read_twice(
    server_factory, sink, monkeypatch
):
    """A pass's messages are split into writer jobs of at most BATCH_SECONDS (here: one message
    each); the rest wait in memory for the next job, so each message is parsed once, none is
    released to the store, and all are delivered."""
    monkeypatch.setattr(inbound_mod, "BATCH_SECONDS", -1.0)
    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")
    prepared = count_calls(monkeypatch, srv.inbound, "prepare")
    released = count_calls(monkeypatch, inbound, "release")
    await asyncio.gather(
        *(srv.writer.save("ann@example.com", [LIST], post(f"Batch {i}")) for i in range(5))
    )
    copies = await mails_to(sink, "bob@example.com", 5)
    assert sorted(c["Subject"] for c in copies) == [f"[networking] Batch {i}" for i in range(5)]
    assert len(prepared) == 5
    assert released == []
    with srv.store.reader() as s:
        rows = s.execute(select(Inbound)).scalars().all()
    assert [r.state for r in rows] == [InboundState.DONE] * 5
