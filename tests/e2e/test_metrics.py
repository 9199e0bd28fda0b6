"""GET /metrics (SPEC 9): the figures in the store, read by prometheus-client's own text parser."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import func, select

from listserv.dmarc import DmarcPolicies
from listserv.server import Server
from listserv.store.tables import Delivery
from tests.conftest import (
    DOMAIN,
    FakeResolver,
    Sink,
    add_members,
    base_url,
    make_config,
    member,
    settled,
    wait_for,
)
from tests.conftest import send_to_list as send

LIST = f"networking@{DOMAIN}"
LEAVE = f"networking-leave@{DOMAIN}"
REQUEST = f"networking-request@{DOMAIN}"
ANN, BOB, CAROL, DAVE, EVE = (
    "ann@example.com",
    "bob@example.net",
    "carol@example.org",
    "dave@example.com",
    "eve@example.net",
)


async def scrape(srv: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics, parsed: (sample name, sorted labels) -> value."""
    async with httpx.AsyncClient(base_url=await base_url(srv)) as web:
        resp = await web.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def on(list_name: str = "networking", **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"list": list_name, **labels}.items()))


def sent_in_store(srv: Server) -> int:
    with srv.store.session() as s:
        return s.exec(select(func.count()).where(Delivery.state == "sent")).one()


async def test_metrics_count_posts_copies_leaves_and_members_after_real_traffic(server, sink):
    """After a post, a held post, a refused copy, three leave requests and a 'back', /metrics
    says so."""
    await check_after_traffic(server, sink)


async def test_metrics_on_postgresql_count_the_same_traffic(pg_cluster, tmp_path, sink):
    """The same figures from a server whose store is PostgreSQL."""
    url = pg_cluster.fresh_database(f"metrics_{uuid.uuid4().hex[:12]}")
    cfg = make_config(tmp_path, relay=f"smtp://127.0.0.1:{sink.port}", database=url)
    srv = Server(cfg, dmarc=DmarcPolicies(FakeResolver()))
    await srv.start()
    try:
        assert srv.store.dialect == "postgresql"
        await check_after_traffic(srv, sink)
    finally:
        await srv.stop()


async def check_after_traffic(server: Server, sink: Sink) -> None:
    add_members(server, ANN, BOB, CAROL, DAVE, EVE)

    async def handle_RCPT(srv, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if address == BOB:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    sink.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
    await send(server, ANN, LIST, "A lead at Acme", "They are hiring.")
    await send(server, "stranger@example.com", LIST, "Buy now", "Cheap.")
    await settled(server)
    await send(server, CAROL, LEAVE, "leave", "I got a job at Acme, thanks all!")
    await send(server, DAVE, LEAVE, "leave", "Too much mail for me.")
    await send(server, EVE, LEAVE, "leave", "My search is over.")
    await settled(server)
    await send(server, CAROL, REQUEST, "back", "back")
    await settled(server)
    await wait_for(lambda: member(server, CAROL).delivery == "regular", what="carol back")

    got = await scrape(server)

    assert got[("listserv_posts_total", on(status="accepted"))] == 1
    assert got[("listserv_posts_total", on(status="rejected"))] == 0
    assert got[("listserv_posts_held", on())] == 1
    assert got[("listserv_copies_failed_total", ())] == 1
    assert got[("listserv_copies_sent_total", ())] == sent_in_store(server) > 0
    for state in ("due", "deferred", "sending"):
        assert got[("listserv_queue_copies", (("state", state),))] == 0
    assert got[("listserv_queue_oldest_seconds", ())] == 0
    assert got[("listserv_inbound_messages", (("state", "failed"),))] == 0
    assert got[("listserv_leave_requests_total", on(outcome="job"))] == 1
    assert got[("listserv_leave_requests_total", on(outcome="unsure"))] == 1
    assert got[("listserv_leave_requests_total", on(outcome="other"))] == 1
    assert got[("listserv_alumni_switches_total", on())] == 1
    assert got[("listserv_alumni_returns_total", on())] == 1
    assert got[("listserv_bounces_total", on(kind="hard"))] == 1
    assert got[("listserv_joins_total", on())] == 5
    assert got[("listserv_members", on(status="active", delivery="regular"))] == 5
    assert got[("listserv_members", on(status="active", delivery="alumni"))] == 0


async def test_metrics_of_a_new_list_start_at_zero(server):
    """A configured list with no traffic yet has its series at 0, so the first event is an
    increase Prometheus can see."""
    got = await scrape(server)
    assert got[("listserv_posts_total", on(status="accepted"))] == 0
    assert got[("listserv_leave_requests_total", on(outcome="job"))] == 0
    assert got[("listserv_members", on(status="active", delivery="regular"))] == 0


async def test_metrics_show_the_queue_and_a_completed_leave(server, sink):
    """Copies the relay defers stay on the queue gauges with their age, not among the sent; a
    one-click leave is a leave and changes the member gauge."""
    add_members(server, ANN, BOB)
    sink.answer = "451 4.3.0 Try again later"
    await send(server, ANN, LIST, "Deferred", "Later.")
    await wait_for(lambda: _deferred(server) == 2, what="both copies deferred")

    got = await scrape(server)
    states = ("due", "deferred", "sending")  # a 1 s retry delay: which one is a matter of time
    assert sum(got[("listserv_queue_copies", (("state", state),))] for state in states) == 2
    assert got[("listserv_queue_oldest_seconds", ())] > 0
    assert got[("listserv_copies_sent_total", ())] == 0

    async with httpx.AsyncClient(base_url=await base_url(server)) as web:
        token = member(server, BOB).token
        await web.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    got = await scrape(server)
    assert got[("listserv_leaves_total", on())] == 1
    assert got[("listserv_members", on(status="left", delivery="regular"))] == 1
    assert got[("listserv_members", on(status="active", delivery="regular"))] == 1


def _deferred(srv: Server) -> int:
    with srv.store.session() as s:
        return s.exec(
            select(func.count()).where(Delivery.state == "queued", Delivery.attempts > 0)
        ).one()
