"""Bounce handling: scores from real DSNs and VERP, one point a day, disabling, weekly probes, re-enabling."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from listserv.bounces import score as bouncing
from listserv.config import Config, Site
from listserv.store import Store, members, open_store
from listserv.store.tables import Delivery, Event, Inbound, ListState, Member, Outbound
from tests.conftest import (
    DOMAIN,
    add_members,
    asend,
    make_config,
    make_message,
    parse_bytes,
    wait_for,
)

DATA = Path(__file__).parents[1] / "data" / "bounces"
EXPECTED = json.loads((DATA / "expected.json").read_text())
SAMPLES = sorted(EXPECTED)
BOUNCES = f"networking-bounces@{DOMAIN}"
MON = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # a Monday afternoon
DAY = timedelta(days=1)
OWNER = "owner@example.org"


def sample(name: str) -> bytes:
    """A sample bounce with CRLF line ends, as it would arrive over SMTP."""
    return (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def sent_copies(store: Store, *addresses: str, at: datetime | None = None) -> None:
    """Record a post's copy as sent to each address at `at`: only such a copy can bounce."""
    when = at or datetime.now(UTC)
    with store.session() as s:
        out = Outbound(list_name="networking", kind="post", raw=b"x", created_at=when)
        s.add(out)
        s.flush()
        for address in addresses:
            s.add(
                Delivery(
                    outbound_id=out.id,  # type: ignore[arg-type]
                    recipient=address,
                    state="sent",
                    created_at=when,
                    next_attempt_at=when,
                    sent_at=when,
                )
            )


# --- through a running server -------------------------------------------------------------------


def member(srv, address: str) -> Member | None:  # type: ignore[no-untyped-def]
    with srv.store.session() as s:
        return members.get_member(s, "networking", address)


def inbound_done(srv) -> bool:  # type: ignore[no-untyped-def]
    """Every stored message has been handled, and none failed."""
    with srv.store.session() as s:
        rows = list(s.exec(select(Inbound)))
    assert all(not r.error for r in rows), [r.error for r in rows]
    return bool(rows) and all(r.state == "done" for r in rows)


def queued_copies(srv) -> list[Delivery]:  # type: ignore[no-untyped-def]
    """Copies waiting to go out (the ones sent_copies recorded are not)."""
    with srv.store.session() as s:
        return list(s.exec(select(Delivery).where(Delivery.state != "sent")))


@pytest.mark.parametrize("name", SAMPLES)
async def test_sample_bounce_scores_every_member_it_names_and_is_never_answered(server, sink, name):
    """Each real-world DSN to the bounce address scores its failed members; nobody gets any mail."""
    permanent, temporary = EXPECTED[name]["permanent"], EXPECTED[name]["temporary"]
    add_members(server, *permanent, *temporary, "bystander@example.com")
    sent_copies(server.store, *permanent, *temporary, "bystander@example.com")
    rcpt = f"networking-bounces+ann=example.com@{DOMAIN}" if name == "verp.eml" else BOUNCES

    await asend(server.smtp_port, "", rcpt, sample(name))

    await wait_for(lambda: inbound_done(server), what="the bounce to be handled")
    for address in permanent:
        assert member(server, address).bounce_score == 1, address  # type: ignore[union-attr]
    for address in temporary:  # a 'delayed' DSN is logged but scores nothing
        assert member(server, address).bounce_score == 0, address  # type: ignore[union-attr]
    assert member(server, "bystander@example.com").bounce_score == 0  # type: ignore[union-attr]
    assert queued_copies(server) == []
    assert sink.messages == []


async def test_delayed_dsn_is_logged_as_temporary(server):
    """A 'still being retried' DSN leaves a bounce-temporary event and no score."""
    add_members(server, "dan@slow.example.com")
    sent_copies(server.store, "dan@slow.example.com")

    await asend(server.smtp_port, "", BOUNCES, sample("postfix_delayed.eml"))

    await wait_for(lambda: inbound_done(server), what="the bounce to be handled")
    with server.store.session() as s:
        kinds = [
            e.kind for e in s.exec(select(Event).where(Event.address == "dan@slow.example.com"))
        ]
    assert "bounce-temporary" in kinds and "bounce" not in kinds


async def test_verp_bounce_hits_exactly_the_encoded_member(server, sink):
    """A DSN to NAME-bounces+ann=example.com@ scores ann, whatever address the DSN itself names."""
    add_members(server, "ann@example.com", "bob@example.net")
    sent_copies(server.store, "ann@example.com", "bob@example.net")

    await asend(
        server.smtp_port, "", f"networking-bounces+ann=example.com@{DOMAIN}", sample("postfix.eml")
    )

    await wait_for(lambda: inbound_done(server), what="the bounce to be handled")
    assert member(server, "ann@example.com").bounce_score == 1  # type: ignore[union-attr]
    assert member(server, "bob@example.net").bounce_score == 0  # type: ignore[union-attr]
    assert sink.messages == []


async def test_bounce_for_a_non_member_is_dropped(server, sink):
    """A DSN naming an address that is not subscribed changes nothing and answers nobody."""
    add_members(server, "ann@example.com")

    await asend(server.smtp_port, "", BOUNCES, sample("postfix.eml"))  # names bob@example.net

    await wait_for(lambda: inbound_done(server), what="the bounce to be handled")
    assert member(server, "bob@example.net") is None
    assert member(server, "ann@example.com").bounce_score == 0  # type: ignore[union-attr]
    assert queued_copies(server) == []


async def test_auto_reply_to_a_verp_address_is_not_a_bounce(server, sink):
    """An out-of-office reply sent to a VERP bounce address scores nothing and gets no answer."""
    add_members(server, "ann@example.com")
    ooo = make_message("""
        From: Ann Lee <ann@example.com>
        To: networking-bounces+ann=example.com@lists.example.org
        Subject: Out of office
        Message-ID: <ooo-1@example.com>

        I am away until Monday.
        """)

    await asend(
        server.smtp_port, "ann@example.com", f"networking-bounces+ann=example.com@{DOMAIN}", ooo
    )

    await wait_for(lambda: inbound_done(server), what="the message to be handled")
    assert member(server, "ann@example.com").bounce_score == 0  # type: ignore[union-attr]
    assert queued_copies(server) == []


POST = make_message("""
    From: Ann Lee <ann@example.com>
    To: networking@lists.example.org
    Subject: Anyone hiring data analysts?
    Message-ID: <bounce-post-1@example.com>

    Hi all, I'm looking for data analyst roles.
    """)


async def test_synchronous_5xx_from_the_relay_counts_as_a_bounce(server, sink):
    """A copy the relay refuses with 550 at once scores the member and is not retried."""
    add_members(server, "ann@example.com")
    sink.answer = "550 5.1.1 no such user"

    await asend(server.smtp_port, "ann@example.com", f"networking@{DOMAIN}", POST)

    await wait_for(
        lambda: member(server, "ann@example.com").bounce_score == 1,  # type: ignore[union-attr]
        what="the refused copy to be scored",
    )
    [copy] = queued_copies(server)
    assert copy.state == "failed" and "550" in copy.last_error
    with server.store.session() as s:
        [event] = s.exec(select(Event).where(Event.kind == "bounce"))
    assert "relay refused: 550" in event.reason


async def test_temporary_4xx_from_the_relay_scores_nothing_and_is_retried(server, sink):
    """A 451 from the relay defers the copy for a later try; the member's score stays 0."""
    add_members(server, "ann@example.com")
    sink.answer = "451 4.3.0 try again later"

    await asend(server.smtp_port, "ann@example.com", f"networking@{DOMAIN}", POST)

    await wait_for(
        lambda: any("451" in d.last_error for d in queued_copies(server)), what="a deferral"
    )
    [copy] = queued_copies(server)
    assert copy.state in ("queued", "sending")
    assert member(server, "ann@example.com").bounce_score == 0  # type: ignore[union-attr]


async def test_back_re_enables_a_disabled_member(server, sink):
    """A disabled member who sends `back` is active again with a clean score and gets posts again."""
    add_members(server, "ann@example.com", "bob@example.net")
    with server.store.session() as s:
        bob = members.get_member(s, "networking", "bob@example.net")
        bob.status, bob.bounce_score = "disabled", 5.0  # type: ignore[union-attr]
        s.add(bob)
    back = make_message("""
        From: Bob Stone <bob@example.net>
        To: networking-request@lists.example.org
        Subject: back
        Message-ID: <back-1@example.net>

        """)

    await asend(server.smtp_port, "bob@example.net", f"networking-request@{DOMAIN}", back)

    await wait_for(
        lambda: member(server, "bob@example.net").status == "active",  # type: ignore[union-attr]
        what="bob to be re-enabled",
    )
    assert member(server, "bob@example.net").bounce_score == 0  # type: ignore[union-attr]
    await wait_for(lambda: sink.to("bob@example.net"), what="the reply to bob")
    sink.clear()
    await asend(server.smtp_port, "ann@example.com", f"networking@{DOMAIN}", POST)
    await wait_for(lambda: sink.to("bob@example.net"), what="a post copy to bob")


# --- against the store with a frozen clock ------------------------------------------------------


@pytest.fixture
def bcfg(tmp_path: Path) -> Config:
    """A list that disables at 3 points, probes twice and forgets scores after 7 days."""
    return make_config(
        tmp_path,
        list_extra="bounce_threshold = 3\nbounce_warnings = 2\nbounce_score_reset_days = 7\n",
    )


@pytest.fixture
def bstore(bcfg: Config) -> Store:
    store = open_store(bcfg.database_url)
    with store.session() as s:
        s.add(ListState(name="networking", first_seen=MON - 30 * DAY))
        for address in ("bob@example.net", "ann@example.com"):
            members.upsert_member(s, "networking", address, MON - 30 * DAY, status="active")
    yield store
    store.dispose()


def bounce(store: Store, cfg: Config, when: datetime, address: str = "bob@example.net") -> None:
    """A permanent VERP bounce for address arriving at `when`, of a copy sent an hour before."""
    sent_copies(store, address, at=when - timedelta(hours=1))
    with store.session() as s:
        bouncing.handle_bounce(
            s,
            cfg.lists["networking"],
            Site.of(cfg.server),
            sample("postfix.eml"),
            address.replace("@", "="),
            when,
        )


def maintain(store: Store, cfg: Config, when: datetime) -> None:
    with store.session() as s:
        bouncing.maintain(s, cfg.lists["networking"], Site.of(cfg.server), when)


def bob(store: Store) -> Member:
    with store.session() as s:
        m = members.get_member(s, "networking", "bob@example.net")
        assert m is not None
        return m


def mail_to(store: Store, address: str) -> list[str]:
    """Subjects of every notice queued to address, oldest first."""
    with store.session() as s:
        q = (
            select(Outbound.raw)
            .join(Delivery, Delivery.outbound_id == Outbound.id)
            .where(Delivery.recipient == address, Outbound.kind == "notice")
            .order_by(Delivery.id)
        )
        # strip(): CPython keeps the blank before a Subject folded right after its colon
        return [str(parse_bytes(raw)["Subject"]).strip() for raw in s.exec(q)]


def test_one_point_per_bouncing_day_at_most(bcfg, bstore):
    """Three bounces on one day score one point; a bounce the next day scores the second."""
    for hour in (0, 2, 5):
        bounce(bstore, bcfg, MON + timedelta(hours=hour))
    assert bob(bstore).bounce_score == 1

    bounce(bstore, bcfg, MON + DAY)

    assert bob(bstore).bounce_score == 2
    assert bob(bstore).status == "active"


def test_reaching_the_threshold_disables_and_tells_the_member_and_the_owners(bcfg, bstore):
    """At bounce_threshold the member is disabled, gets a notice, and the owners get a report."""
    for day in range(3):
        bounce(bstore, bcfg, MON + day * DAY)

    m = bob(bstore)
    assert (m.status, m.bounce_score) == ("disabled", 3)
    assert mail_to(bstore, "bob@example.net") == [
        "Mail from Tri-County Job Seekers Networking to you is bouncing"
    ]
    assert mail_to(bstore, OWNER) == [
        "Delivery to bob@example.net paused on Tri-County Job Seekers Networking"
    ]
    with bstore.session() as s:
        kinds = [e.kind for e in s.exec(select(Event).where(Event.address == "bob@example.net"))]
    assert kinds.count("bounce") == 3 and kinds.count("disabled") == 1


def test_disabled_member_gets_no_posts(bcfg, bstore):
    """Fan-out skips a disabled member."""
    from listserv.store import outbound as queue

    for day in range(3):
        bounce(bstore, bcfg, MON + day * DAY)
    with bstore.session() as s:
        out = queue.add_outbound(
            s, "networking", "post", b"Subject: x\r\n\r\nhi\r\n", MON + 3 * DAY
        )
        assert queue.queue_to_members(s, out.id, "networking", ("regular",), MON + 3 * DAY) == 1
        [copy] = s.exec(select(Delivery).where(Delivery.outbound_id == out.id))
    assert copy.recipient == "ann@example.com"


def disable_bob(store: Store, cfg: Config) -> None:
    """Bob bounces Mon, Tue and Wed afternoon and is disabled on Wednesday."""
    for day in range(3):
        bounce(store, cfg, MON + day * DAY)
    assert bob(store).status == "disabled"


PROBE = "Is this address still working? (Tri-County Job Seekers Networking)"
NIGHT = timedelta(hours=13, minutes=17)  # maintenance runs at 03:17, the night after a 14:00 bounce


def test_maintain_probes_weekly_and_re_enables_when_a_probe_did_not_bounce(bcfg, bstore):
    """The first probe goes out the next night; three quiet days later the member is active again."""
    disable_bob(bstore, bcfg)
    probe_day = MON + 2 * DAY + NIGHT

    maintain(bstore, bcfg, probe_day)
    maintain(bstore, bcfg, probe_day + DAY)
    maintain(bstore, bcfg, probe_day + 2 * DAY)

    assert mail_to(bstore, "bob@example.net")[1:] == [PROBE]
    assert bob(bstore).status == "disabled"

    maintain(bstore, bcfg, probe_day + 3 * DAY)

    m = bob(bstore)
    assert (m.status, m.bounce_score, m.probes_sent) == ("active", 0, 0)
    assert mail_to(bstore, "bob@example.net")[1:] == [PROBE]


def test_maintain_removes_after_the_last_probe_bounced(bcfg, bstore):
    """Each probe bounces: probes go out weekly up to bounce_warnings, then the member is removed."""
    disable_bob(bstore, bcfg)
    first = MON + 2 * DAY + NIGHT
    for night in range(22):
        when = first + night * DAY
        probes_before = bob(bstore).probes_sent
        maintain(bstore, bcfg, when)
        if bob(bstore).status == "left":
            break
        if bob(bstore).probes_sent > probes_before:
            bounce(bstore, bcfg, when + timedelta(hours=6))  # the probe bounced that morning

    m = bob(bstore)
    assert m.status == "left"
    assert mail_to(bstore, "bob@example.net").count(PROBE) == 2
    assert (m.left_at.date() - first.date()).days == 14  # type: ignore[union-attr]
    with bstore.session() as s:
        probes = list(
            s.exec(
                select(Delivery.created_at)
                .join(Outbound, Outbound.id == Delivery.outbound_id)
                .where(Delivery.recipient == "bob@example.net", Outbound.kind == "notice")
            )
        )
    assert len(probes) == 3  # the disabled notice and two probes


def test_maintain_forgets_stale_scores_after_reset_days(bcfg, bstore):
    """A score untouched for bounce_score_reset_days goes back to 0; a fresher one stays."""
    bounce(bstore, bcfg, MON, "ann@example.com")
    bounce(bstore, bcfg, MON)
    bounce(bstore, bcfg, MON + DAY)

    maintain(bstore, bcfg, MON + 6 * DAY + NIGHT)  # Monday night: 7 days after ann's, 6 after bob's

    with bstore.session() as s:
        assert members.get_member(s, "networking", "ann@example.com").bounce_score == 0  # type: ignore[union-attr]
    assert bob(bstore).bounce_score == 2
    maintain(bstore, bcfg, MON + 7 * DAY + NIGHT)
    assert bob(bstore).bounce_score == 0


def test_a_bounce_after_a_quiet_spell_starts_the_score_afresh(bcfg, bstore):
    """Old points are forgotten when the next bounce comes after bounce_score_reset_days."""
    bounce(bstore, bcfg, MON)
    bounce(bstore, bcfg, MON + DAY)

    bounce(bstore, bcfg, MON + 9 * DAY)

    assert bob(bstore).bounce_score == 1


async def test_forged_verp_bounce_for_a_member_sent_nothing_adds_no_point(server, sink):
    """A bounce to NAME-bounces+ann=example.com@ when no copy went to ann counts for nothing."""
    add_members(server, "ann@example.com")

    await asend(
        server.smtp_port, "", f"networking-bounces+ann=example.com@{DOMAIN}", sample("postfix.eml")
    )

    await wait_for(lambda: inbound_done(server), what="the bounce to be handled")
    assert member(server, "ann@example.com").bounce_score == 0  # type: ignore[union-attr]


async def test_dsn_naming_a_member_sent_nothing_adds_no_point(server, sink):
    """A plain DSN naming a member counts only when a copy was really sent to that member."""
    add_members(server, "bob@example.net")  # postfix.eml names bob

    await asend(server.smtp_port, "", BOUNCES, sample("postfix.eml"))

    await wait_for(lambda: inbound_done(server), what="the bounce to be handled")
    assert member(server, "bob@example.net").bounce_score == 0  # type: ignore[union-attr]


def test_bounce_of_a_copy_sent_long_ago_adds_no_point(bcfg, bstore):
    """Only a recent copy can bounce: one sent a month before the bounce does not count."""
    sent_copies(bstore, "ann@example.com", at=MON - 30 * DAY)
    with bstore.session() as s:
        bouncing.handle_bounce(
            s,
            bcfg.lists["networking"],
            Site.of(bcfg.server),
            sample("postfix.eml"),
            "ann=example.com",
            MON,
        )
    with bstore.session() as s:
        assert members.get_member(s, "networking", "ann@example.com").bounce_score == 0  # type: ignore[union-attr]
