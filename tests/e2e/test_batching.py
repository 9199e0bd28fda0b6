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


class RecordingRelay:
    """A relay that records (recipient, delivery id) of every copy it is given."""

    def __init__(self, sent: list[tuple[str, int]]) -> None:
        self.sent = sent

    def kept(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, sender, rcpt, data, tag, ready=None, then=None):  # type: ignore[no-untyped-def]
        if ready is not None:
            await ready
        self.sent.append((rcpt, tag))


async def test_handed_copies_that_waited_past_half_their_lease_are_sent_once_not_twice(
    tmp_path, monkeypatch
):
    """Copies handed over wait in memory; their freshness counts from the claim, so a batch
    that waited past half its lease is given back, not sent, and each copy goes out once."""
    from listserv import delivery
    from listserv.store import members, open_store
    from listserv.store import outbound as queue
    from tests.conftest import make_config

    cfg = make_config(tmp_path, server_extra='claim_lease = "1s"\n')
    store = open_store(cfg.database_url)
    now = datetime.now(UTC)
    with store.session() as s:
        members.ensure_list(s, "networking", now)
        for i in range(2):
            m = members.upsert_member(s, "networking", f"m{i}@example.org", now, status="pending")
            members.activate(s, m, now, "test")
        out = queue.add_outbound(s, "networking", "post", post("Stale"), now)
        assert out.id is not None
        queue.queue_to_members(s, out.id, "networking", ("regular",), now)
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(delivery, "BATCH", 2)
    monkeypatch.setattr(delivery, "make_relay", lambda cfg: RecordingRelay(sent))
    deliverer = delivery.Deliverer(store, lambda: cfg, instance_id="a")
    try:
        handoff = store.submit(lambda s: deliverer.claim_in(s, datetime.now(UTC), 0)).result()
        assert handoff is not None and len(handoff.copies) == 2
        deliverer.hand(handoff)
        await asyncio.sleep(1.2)  # a long pass ahead of it: past its lease
        await deliverer.deliver_due()
        assert sorted(sent) == sorted(set(sent)) and len(sent) == 2
    finally:
        store.dispose()


async def test_copies_a_dispatch_job_hands_over_after_delivery_stopped_are_given_back(
    server_factory, monkeypatch
):
    """A dispatch job still running at a stop claims its copies and hands them to a delivery
    worker that has already stopped: they are given back (queued, unclaimed), not left
    claimed until their lease runs out."""
    import time

    from listserv.store import open_store

    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")
    real = srv.inbound.handle
    entered = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_handle(*args: Any, **kwargs: Any) -> Any:
        loop.call_soon_threadsafe(entered.set)
        time.sleep(1.0)  # still dispatching when the stop comes
        return real(*args, **kwargs)

    monkeypatch.setattr(srv.inbound, "handle", slow_handle)
    await srv.writer.save("ann@example.com", [LIST], post("At the stop"))
    await entered.wait()
    await srv.stop()
    store = open_store(srv.cfg.database_url)
    try:
        with store.reader() as s:
            rows = [(d.state, d.claimed_by) for d in s.execute(select(Delivery)).scalars()]
    finally:
        store.dispose()
    assert rows and all(state == CopyState.QUEUED for state, _ in rows), rows


async def test_owners_hear_of_a_message_parked_in_a_pass_whose_later_job_failed(
    server_factory, sink, monkeypatch
):
    """A pass's first writer job parks a message and commits; its next job fails. The owners
    are still told about the parked one."""
    monkeypatch.setattr(inbound_mod, "BATCH_SECONDS", -1.0)  # one message per writer job
    srv = await server_factory(server_extra="inbound_attempts = 1\n")
    add_members(srv, "ann@example.com", "bob@example.com")
    real_prepare, real_handle = srv.inbound.prepare, srv.inbound.handle
    jobs: list[int] = []

    def prepare(cfg: Any, row: Any, now: Any) -> Any:
        if b"Broken" in row.raw:
            raise ValueError("unreadable")
        return real_prepare(cfg, row, now)

    def handle(*args: Any, **kwargs: Any) -> Any:
        jobs.append(1)
        if len(jobs) == 2:
            raise RuntimeError("the second job's commit failed")
        return real_handle(*args, **kwargs)

    monkeypatch.setattr(srv.inbound, "prepare", prepare)
    monkeypatch.setattr(srv.inbound, "handle", handle)
    await asyncio.gather(
        *(srv.writer.save("ann@example.com", [LIST], post(s)) for s in ("Broken", "Good", "More"))
    )
    await wait_for(lambda: sink.to("owner@example.org"), what="the owners' notice")


def test_dispatch_claims_only_the_copies_it_queued_and_none_while_delivery_is_behind(cfg, store):
    """claim_in takes the copies queued after the job began, not a backlog of older due ones
    (delivery claims those as it gets to them), and nothing while delivery already has
    HANDED_BATCHES handoffs waiting: no lease runs out in memory."""
    from listserv import delivery
    from listserv.store import outbound as queue

    now = datetime.now(UTC)

    def queue_copies(s: Any, n: int, tag: str) -> None:
        out = queue.add_outbound(s, "networking", "post", post(tag), now)
        assert out.id is not None
        queue.queue_to_addresses(
            s, out.id, [(f"{tag}{i}@example.org", "", None) for i in range(n)], now
        )

    deliverer = delivery.Deliverer(store, lambda: cfg, instance_id="a")

    def job(s: Any) -> Any:
        queue_copies(s, 3, "old")  # a backlog, due already
        after = queue.last_delivery_id(s)
        queue_copies(s, 2, "new")  # what this job queued
        return deliverer.claim_in(s, datetime.now(UTC), after)

    handoff = store.submit(job).result()
    assert handoff is not None
    assert sorted(c.recipient for c in handoff.copies) == ["new0@example.org", "new1@example.org"]
    assert set(handoff.bodies) == {handoff.copies[0].outbound_id}
    deliverer.handed.extend([handoff] * delivery.HANDED_BATCHES)
    assert store.submit(lambda s: deliverer.claim_in(s, datetime.now(UTC), 0)).result() is None


async def test_a_pass_that_starts_on_a_handoff_still_claims_what_waits_in_the_store(
    cfg, store, monkeypatch
):
    """Copies dispatch did not hand over (delivery was behind) wait in the store, and the
    wake-up says so: the pass that sends a handoff claims them too, not a second later."""
    from listserv import delivery
    from listserv.store import outbound as queue

    now = datetime.now(UTC)
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(delivery, "make_relay", lambda cfg: RecordingRelay(sent))
    deliverer = delivery.Deliverer(store, lambda: cfg, instance_id="a")

    def job(s: Any) -> Any:
        for tag in ("waiting", "handed"):
            out = queue.add_outbound(s, "networking", "post", post(tag), now)
            assert out.id is not None
            after = queue.last_delivery_id(s)
            queue.queue_to_addresses(s, out.id, [(f"{tag}@example.org", "", None)], now)
        return deliverer.claim_in(s, datetime.now(UTC), after)

    handoff = store.submit(job).result()
    deliverer.hand(handoff)
    deliverer.wake()  # what inbound does for copies it could not hand over
    await deliverer.deliver_due()
    assert sorted(rcpt for rcpt, _ in sent) == ["handed@example.org", "waiting@example.org"]


async def test_a_failed_claim_ends_the_pass_s_senders_and_the_next_pass_claims_again(
    cfg, store, monkeypatch
):
    """A claim that raises ends the pass with its senders (none is left waiting for work for
    ever), and the next pass asks the store again."""
    from listserv import delivery
    from listserv.store import outbound as queue

    now = datetime.now(UTC)
    with store.session() as s:
        out = queue.add_outbound(s, "networking", "post", post("Retry"), now)
        assert out.id is not None
        queue.queue_to_addresses(s, out.id, [("bob@example.org", "", None)], now)
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(delivery, "make_relay", lambda cfg: RecordingRelay(sent))
    deliverer = delivery.Deliverer(store, lambda: cfg, instance_id="a")
    real_claim = deliverer._claim
    calls: list[int] = []

    async def flaky_claim(lease: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database hiccup")
        return await real_claim(lease)

    monkeypatch.setattr(deliverer, "_claim", flaky_claim)
    try:
        await deliverer.deliver_due()
    except OSError:
        pass
    await asyncio.sleep(0)
    senders = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Deliverer._sender"]
    assert senders == []
    await deliverer.deliver_due()
    assert [rcpt for rcpt, _ in sent] == ["bob@example.org"]


async def test_a_post_with_more_copies_than_a_handoff_goes_out_in_one_pass(cfg, store, monkeypatch):
    """Dispatch hands over at most BATCH copies of a big post; the pass that sends them goes
    on to claim the rest from the store instead of leaving them for the next timer."""
    from listserv import delivery
    from listserv.store import outbound as queue

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(delivery, "BATCH", 2)
    monkeypatch.setattr(delivery, "make_relay", lambda cfg: RecordingRelay(sent))
    deliverer = delivery.Deliverer(store, lambda: cfg, instance_id="a")
    await deliverer.deliver_due()  # an earlier, empty pass: nothing is known to be due now
    now = datetime.now(UTC)

    def dispatch(s: Any) -> Any:
        after = queue.last_delivery_id(s)
        out = queue.add_outbound(s, "networking", "post", post("Big"), now)
        assert out.id is not None
        queue.queue_to_addresses(
            s, out.id, [(f"m{i}@example.org", "", None) for i in range(5)], now
        )
        return deliverer.claim_in(s, datetime.now(UTC), after)

    handoff = store.submit(dispatch).result()
    assert handoff is not None and len(handoff.copies) == 2
    deliverer.hand(handoff)
    await deliverer.deliver_due()
    assert sorted(rcpt for rcpt, _ in sent) == [f"m{i}@example.org" for i in range(5)]
