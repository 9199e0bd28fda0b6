"""Digest runs against the store: who gets which digest, exactly once per period, the alumni pulse."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from listserv import cli
from listserv.config import Config
from listserv.digest.build import PeriodCounts
from listserv.digest.runs import period_counts, preview, pulse_history, run_digest
from listserv.store import Store, members, open_store
from listserv.store.tables import Delivery, DigestRun, ListState, Outbound, Post
from tests.conftest import (
    DOMAIN,
    NOW,
    add_members,
    asend,
    make_config,
    make_message,
    parse_bytes,
    wait_for,
)
from tests.pgcluster import skip_reason

WEEK_AGO = NOW - timedelta(days=7)
REGULAR, DIGEST, ALUMNI = "reg@example.com", "dig@example.net", "alu@example.org"


# --- helpers -----------------------------------------------------------------------------------


def seed_list(store: Store, first_seen: datetime) -> None:
    """The list row, first seen at a known time, and one active member in each delivery mode."""
    with store.session() as s:
        s.add(ListState(name="networking", first_seen=first_seen))
        for address, delivery in ((REGULAR, "regular"), (DIGEST, "digest"), (ALUMNI, "alumni")):
            members.upsert_member(
                s, "networking", address, first_seen, status="active", delivery=delivery
            )
        members.upsert_member(
            s, "networking", "gone@example.com", first_seen, status="left", delivery="digest"
        )
        members.upsert_member(
            s, "networking", "paused@example.com", first_seen, status="disabled", delivery="digest"
        )


def add_post(
    store: Store,
    subject: str,
    when: datetime,
    *,
    sender: str = "Ann Lee <ann@example.com>",
    topic: str | None = None,
    status: str = "accepted",
    list_name: str = "networking",
) -> None:
    """A post row as the inbound worker would have stored it."""
    mid = f"<{abs(hash((subject, when)))}@example.com>"
    raw = make_message(f"""
        From: {sender}
        To: networking@{DOMAIN}
        Subject: [networking] {subject}
        Message-ID: {mid}
        Date: {when.strftime("%a, %d %b %Y %H:%M:%S +0000")}

        Text of the post about {subject}.
        """)
    with store.session() as s:
        s.add(
            Post(
                list_name=list_name,
                message_id=mid,
                sender="ann@example.com",
                from_header=sender,
                subject=f"[networking] {subject}",
                received_at=when,
                raw=raw,
                status=status,
                topic=topic,
                thread_key=mid,
            )
        )


def add_event(
    store: Store, kind: str, when: datetime, list_name: str = "networking", reason: str = "fixture"
) -> None:
    with store.session() as s:
        members.log_event(s, list_name, "someone@example.com", kind, reason, when)


def digests(store: Store) -> list[Outbound]:
    with store.session() as s:
        return list(s.exec(select(Outbound).where(Outbound.kind == "digest").order_by(Outbound.id)))


def recipients(store: Store, outbound_id: int | None) -> list[str]:
    with store.session() as s:
        q = select(Delivery.recipient).where(Delivery.outbound_id == outbound_id)
        return sorted(s.exec(q))


def token_of(store: Store, address: str) -> str:
    with store.session() as s:
        member = members.get_member(s, "networking", address)
        assert member is not None
        return member.token


@pytest.fixture
def world(cfg: Config, store: Store) -> Store:
    """A store whose list was first seen a week before NOW, with one member per delivery mode."""
    seed_list(store, WEEK_AGO)
    return store


# --- the regular digest ------------------------------------------------------------------------


def test_two_posts_make_one_mime_digest_queued_to_digest_members_only(cfg, world):
    """Two posts, then a run: one multipart/mixed digest (TOC + multipart/digest) for digest members."""
    add_post(world, "Job fair on Friday", NOW - timedelta(days=5))
    add_post(world, "Acme is hiring analysts", NOW - timedelta(days=2))

    outcome = run_digest(world, cfg, "networking", "regular", NOW)

    assert outcome == "regular digest with 2 post(s) queued for 1 member(s)"
    [out] = digests(world)
    assert recipients(world, out.id) == [DIGEST]
    msg = parse_bytes(out.raw)
    assert msg["Subject"] == "[networking] Weekly digest, 23 Nov 2026 (2 messages)"
    assert msg["List-Id"] == "Tri-County Job Seekers Networking <networking.lists.example.org>"
    assert msg.get_content_type() == "multipart/mixed"
    toc, digest = msg.get_payload()
    assert toc.get_content_type() == "multipart/alternative"
    toc = toc.get_body(("plain",))
    assert (
        "Job fair on Friday" in toc.get_content() and "Acme is hiring analysts" in toc.get_content()
    )
    assert digest.get_content_type() == "multipart/digest"
    enclosed = digest.get_payload()
    assert [p.get_content_type() for p in enclosed] == ["message/rfc822", "message/rfc822"]
    assert [p.get_payload()[0]["Subject"] for p in enclosed] == [
        "[networking] Job fair on Friday",
        "[networking] Acme is hiring analysts",
    ]


def test_second_run_right_after_sends_nothing(cfg, world):
    """A run right after a digest finds no new posts and queues nothing more."""
    add_post(world, "Job fair on Friday", NOW - timedelta(days=5))
    run_digest(world, cfg, "networking", "regular", NOW)

    assert (
        run_digest(world, cfg, "networking", "regular", NOW)
        == "nothing to send: the period is empty"
    )
    later = run_digest(world, cfg, "networking", "regular", NOW + timedelta(minutes=5))
    assert later == "nothing to report this period: nothing sent"
    assert len(digests(world)) == 1


def test_next_digest_holds_only_posts_since_the_last_one(cfg, world):
    """Each period starts where the previous run ended, so no post appears in two digests."""
    add_post(world, "Job fair on Friday", NOW - timedelta(days=5))
    run_digest(world, cfg, "networking", "regular", NOW)
    add_post(world, "Resume review swap", NOW + timedelta(days=1))

    run_digest(world, cfg, "networking", "regular", NOW + timedelta(days=7))

    _first, second = digests(world)
    enclosed = parse_bytes(second.raw).get_payload()[1].get_payload()
    assert [p.get_payload()[0]["Subject"] for p in enclosed] == ["[networking] Resume review swap"]


def test_run_with_no_posts_sends_nothing_and_held_posts_do_not_count(cfg, world):
    """Only accepted posts go into a digest; a period without any sends none."""
    add_post(world, "Held for moderation", NOW - timedelta(days=1), status="held")

    assert (
        run_digest(world, cfg, "networking", "regular", NOW)
        == "nothing to report this period: nothing sent"
    )
    assert digests(world) == []


def test_plain_format_is_one_rfc1153_text_message(tmp_path):
    """format = "plain" sends one text/plain RFC 1153 digest with each post's kept headers and body."""
    cfg = make_config(tmp_path, list_extra='\n[lists.networking.digest]\nformat = "plain"\n')
    store = open_store(cfg.database_url)
    try:
        seed_list(store, WEEK_AGO)
        add_post(store, "Job fair on Friday", NOW - timedelta(days=5))
        add_post(store, "Acme is hiring analysts", NOW - timedelta(days=2))

        run_digest(store, cfg, "networking", "regular", NOW)

        [out] = digests(store)
        assert recipients(store, out.id) == [DIGEST]
        msg = parse_bytes(out.raw)
        assert msg.get_content_type() == "multipart/alternative"
        text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert "Today's Topics:" in text
        assert "Subject: [networking] Job fair on Friday" in text
        assert "Text of the post about Acme is hiring analysts." in text
        assert text.count("\n------------------------------\n") == 2  # RFC 1153 message separators
        assert "End of Tri-County Job Seekers Networking Digest, 23 Nov 2026" in text
    finally:
        store.dispose()


# --- alumni ------------------------------------------------------------------------------------


def test_alumni_members_get_only_the_alumni_digest(cfg, world):
    """The regular digest goes to digest members, the alumni update to alumni members, never crossed."""
    add_post(world, "Acme is hiring analysts", NOW - timedelta(days=2), topic="hiring")

    run_digest(world, cfg, "networking", "regular", NOW)
    run_digest(world, cfg, "networking", "alumni", NOW)

    regular, alumni = digests(world)
    assert recipients(world, regular.id) == [DIGEST]
    assert recipients(world, alumni.id) == [ALUMNI]
    assert parse_bytes(alumni.raw)["Subject"].startswith("[networking] Alumni update")


OCT_1 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def pulse_world(cfg: Config, store: Store) -> Store:
    """October (the previous run) and November with hand-counted joins, job-leaves and topics."""
    seed_list(store, datetime(2026, 9, 1, tzinfo=UTC))
    with store.session() as s:
        s.add(
            DigestRun(
                list_name="networking",
                kind="alumni",
                period_start=OCT_1,
                period_end=NOV_1,
                created_at=NOV_1,
            )
        )
    day = timedelta(days=1)
    # November (this period): 4 joins, 2 job-leaves, 3 hiring posts, 0 layoff posts.
    for when in (NOV_1, NOV_1 + 2 * day, NOV_1 + 10 * day, DEC_1 - timedelta(seconds=1)):
        add_event(store, "join", when)
    for when in (NOV_1 + 3 * day, NOV_1 + 20 * day):
        add_event(store, "job-leave", when)
    for n in range(3):
        add_post(store, f"Hiring lead {n}", NOV_1 + (5 + n) * day, topic="hiring")
    add_post(store, "General chat", NOV_1 + 9 * day)
    # October (the period before): 1 join, 5 job-leaves, 0 hiring posts, 2 layoff posts.
    add_event(store, "join", OCT_1 + 4 * day)
    for n in range(5):
        add_event(store, "job-leave", OCT_1 + (n + 1) * day)
    for n in range(2):
        add_post(store, f"Layoffs at plant {n}", OCT_1 + (10 + n) * day, topic="layoff")
    # Things that must not be counted anywhere.
    add_event(store, "join", DEC_1)  # belongs to the next period
    add_event(store, "join", datetime(2026, 9, 15, tzinfo=UTC))  # before both periods
    add_event(store, "join", NOV_1 + day, list_name="other")
    add_event(store, "leave", NOV_1 + day)
    add_event(store, "bounce", NOV_1 + day)
    for _ in range(3):  # an organiser's CSV import: members already, not people who joined
        add_event(store, "join", NOV_1 + 6 * day, reason=members.IMPORTED)
    add_post(store, "Held layoff rumour", NOV_1 + day, topic="layoff", status="held")
    add_post(store, "Rejected hiring spam", NOV_1 + day, topic="hiring", status="rejected")
    return store


def test_period_counts_match_the_hand_counted_fixtures(pulse_world):
    """joins = 'join' events, job-leaves = 'job-leave' events, hiring/layoff = accepted posts' topic."""
    with pulse_world.session() as s:
        assert period_counts(s, "networking", NOV_1, DEC_1) == PeriodCounts(
            joined=4, job_leaves=2, hiring_posts=3, layoff_posts=0
        )
        assert period_counts(s, "networking", OCT_1, NOV_1) == PeriodCounts(
            joined=1, job_leaves=5, hiring_posts=0, layoff_posts=2
        )


def test_the_pulse_history_counts_the_same_joins_and_not_imported_members(pulse_world):
    """The trend table's figures agree with period_counts: an import's join events (the
    organiser moving an existing group over) are not people who joined."""
    with pulse_world.session() as s:
        group = pulse_history(s, "networking", [OCT_1, NOV_1, DEC_1])[""]
    assert [p.joined for p in group] == [1, 4]
    assert [p.job_leaves for p in group] == [5, 2]


def test_alumni_pulse_shows_each_figure_beside_the_previous_period_with_small_counts_masked(
    cfg, pulse_world
):
    """The alumni update's pulse reads this month against last month; counts under 3 are masked."""
    outcome = run_digest(pulse_world, cfg, "networking", "alumni", DEC_1)

    assert outcome == "alumni digest with 4 post(s) queued for 1 member(s)"
    [out] = digests(pulse_world)
    assert recipients(pulse_world, out.id) == [ALUMNI]
    msg = parse_bytes(out.raw)
    assert msg["Subject"] == "[networking] Alumni update, November 2026"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    lines = [line.strip() for line in text.splitlines()]
    pulse = lines[lines.index("The whole group") :]
    assert "4 this month, up from fewer than 3 last month." in pulse
    assert "Fewer than 3 this month, down from 5 last month." in pulse
    assert "3 this month, up from none last month." in pulse
    assert "None this month, about the same as last month (fewer than 3)." in pulse
    assert "Hiring lead 0 (no replies yet)" in text


def test_alumni_run_with_nothing_to_report_sends_nothing(cfg, world):
    """No posts, joins or job-leaves in the period (only leaves, bounces, held posts): no alumni update."""
    add_event(world, "leave", NOW - timedelta(days=2))
    add_event(world, "bounce", NOW - timedelta(days=2))
    add_post(world, "Held post", NOW - timedelta(days=1), status="held", topic="hiring")

    assert (
        run_digest(world, cfg, "networking", "alumni", NOW)
        == "nothing to report this period: nothing sent"
    )
    assert digests(world) == []


def test_alumni_run_with_only_a_join_still_sends_the_pulse(cfg, world):
    """A quiet list with a new join still has news for alumni."""
    add_event(world, "join", NOW - timedelta(days=2))

    assert (
        run_digest(world, cfg, "networking", "alumni", NOW)
        == "alumni digest with 0 post(s) queued for 1 member(s)"
    )
    [out] = digests(world)
    body = parse_bytes(out.raw).get_body(("plain",)).get_content()
    assert "The list was quiet this month" in body


def test_alumni_run_on_a_list_with_alumni_disabled_sends_nothing(tmp_path):
    """alumni.enabled = false: an alumni run is refused politely and nothing is queued."""
    cfg = make_config(tmp_path, list_extra="\n[lists.networking.alumni]\nenabled = false\n")
    store = open_store(cfg.database_url)
    try:
        seed_list(store, WEEK_AGO)
        add_event(store, "join", NOW - timedelta(days=2))
        assert (
            run_digest(store, cfg, "networking", "alumni", NOW)
            == "alumni mode is off for this list: nothing sent"
        )
        assert digests(store) == []
    finally:
        store.dispose()


def test_preview_matches_what_a_run_would_send(tmp_path):
    """preview() shows the alumni update only when a run would send one (not with alumni off)."""
    for enabled, expected in (("true", True), ("false", False)):
        folder = tmp_path / enabled
        folder.mkdir()
        cfg = make_config(folder, list_extra=f"\n[lists.networking.alumni]\nenabled = {enabled}\n")
        store = open_store(cfg.database_url)
        try:
            seed_list(store, WEEK_AGO)
            add_event(store, "join", NOW - timedelta(days=2))
            assert (preview(store, cfg, "networking", "alumni", NOW) is not None) is expected
        finally:
            store.dispose()


# --- exactly once ------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind the store supports (PostgreSQL when initdb is installed)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = request.getfixturevalue("pg_cluster")
    yield cluster.fresh_database(f"digest_{abs(hash(request.node.nodeid)) % 10**8}")


def test_concurrent_runs_for_the_same_period_send_one_digest(cfg, database_url):
    """Two threads with their own connections run the same digest at once: one digest is queued."""
    seed = open_store(database_url)
    seed_list(seed, WEEK_AGO)
    add_post(seed, "Job fair on Friday", NOW - timedelta(days=5))
    add_post(seed, "Acme is hiring analysts", NOW - timedelta(days=2))
    stores = [open_store(database_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(store: Store) -> None:
        barrier.wait()
        outcomes.append(run_digest(store, cfg, "networking", "regular", NOW))

    threads = [threading.Thread(target=run, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert len(outcomes) == 2
        sent, other = sorted(outcomes, reverse=True)
        assert sent == "regular digest with 2 post(s) queued for 1 member(s)"
        assert other in (
            "already sent by another run for this period",  # lost the unique-key race
            "nothing to send: the period is empty",
        )  # ran after the winner committed
        [out] = digests(seed)
        assert recipients(seed, out.id) == [DIGEST]
    finally:
        for st in (seed, *stores):
            st.dispose()


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def frozen_cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI with its clock frozen at NOW."""
    monkeypatch.setattr(cli.common, "now", lambda: NOW)
    return CliRunner()


def test_cli_digest_send_queues_the_digest_and_says_so(cfg, world, frozen_cli):
    """`listserv digest send networking` prints what it queued and exits 0."""
    add_post(world, "Job fair on Friday", NOW - timedelta(days=5))
    add_post(world, "Acme is hiring analysts", NOW - timedelta(days=2))

    result = frozen_cli.invoke(cli.app, ["digest", "send", "networking", "--config", str(cfg.path)])

    assert result.exit_code == 0, result.output
    assert "regular digest with 2 post(s) queued for 1 member(s)" in result.output
    [out] = digests(world)
    assert recipients(world, out.id) == [DIGEST]


def test_cli_digest_send_with_nothing_to_send_says_so_and_exits_0(cfg, world, frozen_cli):
    """With no posts since the last digest, `digest send` prints that nothing was sent; exit 0."""
    result = frozen_cli.invoke(cli.app, ["digest", "send", "networking", "--config", str(cfg.path)])

    assert result.exit_code == 0, result.output
    assert "nothing sent" in result.output
    assert digests(world) == []


def test_cli_digest_send_alumni_kind(cfg, world, frozen_cli):
    """`--kind alumni` sends the alumni update to alumni members."""
    add_event(world, "job-leave", NOW - timedelta(days=3))

    result = frozen_cli.invoke(
        cli.app, ["digest", "send", "networking", "--kind", "alumni", "--config", str(cfg.path)]
    )

    assert result.exit_code == 0, result.output
    assert "alumni digest with 0 post(s) queued for 1 member(s)" in result.output
    [out] = digests(world)
    assert recipients(world, out.id) == [ALUMNI]


@pytest.mark.parametrize("args", [["nosuch"], ["networking", "--kind", "weekly"]])
def test_cli_digest_send_with_bad_list_or_kind_exits_2(cfg, world, frozen_cli, args):
    """An unknown list name or kind is a usage error: one line on stderr, exit 2, nothing sent."""
    result = frozen_cli.invoke(cli.app, ["digest", "send", *args, "--config", str(cfg.path)])

    assert result.exit_code == 2
    assert "listserv:" in result.output
    assert digests(world) == []


def test_cli_digest_preview_prints_without_recording_and_a_send_still_sends(cfg, world, frozen_cli):
    """`digest preview` prints the digest but records nothing, so the following send still sends it."""
    add_post(world, "Job fair on Friday", NOW - timedelta(days=5))
    base = ["--config", str(cfg.path)]

    shown = frozen_cli.invoke(cli.app, ["digest", "preview", "networking", *base])

    assert shown.exit_code == 0, shown.output
    assert "Subject: [networking] Weekly digest, 23 Nov 2026 (1 message)" in shown.output
    assert "Job fair on Friday" in shown.output
    with world.session() as s:
        assert list(s.exec(select(DigestRun))) == []
    assert digests(world) == []
    assert preview(world, cfg, "networking", "regular", NOW) is not None

    sent = frozen_cli.invoke(cli.app, ["digest", "send", "networking", *base])

    assert "regular digest with 1 post(s) queued for 1 member(s)" in sent.output
    assert len(digests(world)) == 1


def test_cli_digest_preview_with_nothing_says_so(cfg, world, frozen_cli):
    """`digest preview` with no posts prints that there is nothing to send."""
    result = frozen_cli.invoke(
        cli.app, ["digest", "preview", "networking", "--config", str(cfg.path)]
    )

    assert result.exit_code == 0
    assert "Nothing to send" in result.output


# --- through a running server ------------------------------------------------------------------

POST = make_message("""
    From: Ann Lee <ann@example.com>
    To: networking@lists.example.org
    Subject: Anyone hiring data analysts?
    Message-ID: <digest-run-1@example.com>

    Hi all, I'm looking for data analyst roles.
    """)


async def test_post_goes_to_regular_members_and_waits_in_the_digest_for_digest_members(
    server, sink
):
    """Regular members get the post at once; digest and alumni members get no copy of it."""
    add_members(server, "ann@example.com", "bob@example.net")
    add_members(server, "dora@example.org", delivery="digest")
    add_members(server, "al@example.org", delivery="alumni")

    await asend(server.smtp_port, "ann@example.com", f"networking@{DOMAIN}", POST)

    await wait_for(lambda: len(sink.messages) == 2, what="two regular copies")
    with server.store.session() as s:
        [post_out] = s.exec(select(Outbound).where(Outbound.kind == "post"))
    assert recipients(server.store, post_out.id) == ["ann@example.com", "bob@example.net"]
    assert sorted(m.rcpt for m in sink.messages) == ["ann@example.com", "bob@example.net"]


async def test_digest_reaches_digest_member_with_list_id_and_own_unsubscribe(server, sink):
    """The digest a member receives carries List-Id and a List-Unsubscribe with their own token."""
    add_members(server, "ann@example.com")
    add_members(server, "dora@example.org", "dan@example.org", delivery="digest")
    add_members(server, "al@example.org", delivery="alumni")
    await asend(server.smtp_port, "ann@example.com", f"networking@{DOMAIN}", POST)
    await wait_for(lambda: sink.to("ann@example.com"), what="the post copy")

    outcome = await asyncio.to_thread(
        run_digest, server.store, server.cfg, "networking", "regular", datetime.now(UTC)
    )
    server.deliverer.wake()

    assert outcome == "regular digest with 1 post(s) queued for 2 member(s)"
    await wait_for(
        lambda: sink.to("dora@example.org") and sink.to("dan@example.org"), what="the digest"
    )
    copy = sink.to("dora@example.org")[0]
    msg = copy.msg
    assert msg["List-Id"] == "Tri-County Job Seekers Networking <networking.lists.example.org>"
    token = token_of(server.store, "dora@example.org")
    assert msg["List-Unsubscribe"] == (
        f"<http://127.0.0.1:8080/u/{token}>, <mailto:networking-leave+{token}@{DOMAIN}>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sink.to("dan@example.org")[0].msg["List-Unsubscribe"] != msg["List-Unsubscribe"]
    assert copy.mail_from == f"networking-bounces+dora=example.org@{DOMAIN}"
    assert msg["Subject"].startswith("[networking] Weekly digest")
    assert len(sink.to("ann@example.com")) == 1, "a regular member gets no digest"
    assert sink.to("al@example.org") == [], "an alumni member gets no regular digest"
