"""The scheduler: missed-run detection, catch-up at start (once, across restarts and instances), replanning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from listserv.scheduler import missed_since
from listserv.store import members, open_store
from listserv.store.tables import Delivery, DigestRun, ListState, Post
from tests.conftest import DOMAIN, config_text, make_config, make_message, wait_for

UTC_ZONE = ZoneInfo("UTC")
WEEKLY = "0 8 * * mon"
MON_16 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
MON_23 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
DIGEST_MEMBER, REGULAR_MEMBER, ALUMNI_MEMBER = (
    "dora@example.org",
    "ann@example.com",
    "al@example.org",
)


# --- missed_since --------------------------------------------------------------------------------


def test_missed_since_is_true_when_a_fire_time_fell_inside_the_gap():
    """A weekly run due on Monday 08:00 was missed by a server down from Sunday to Tuesday."""
    assert missed_since(WEEKLY, UTC_ZONE, MON_23 - timedelta(days=1), MON_23 + timedelta(days=1))


def test_missed_since_counts_a_fire_time_equal_to_now():
    """The interval is (since, now]: a run due exactly now is due."""
    assert missed_since(WEEKLY, UTC_ZONE, MON_16, MON_23)


def test_missed_since_excludes_a_fire_time_equal_to_since():
    """A run at exactly `since` is the one that ended the last period: not missed again."""
    assert not missed_since(WEEKLY, UTC_ZONE, MON_16, MON_23 - timedelta(minutes=1))


def test_missed_since_is_false_within_one_period():
    """Between two fire times nothing was missed."""
    assert not missed_since(
        WEEKLY, UTC_ZONE, MON_16 + timedelta(hours=1), MON_23 - timedelta(hours=1)
    )


def test_missed_since_reads_the_cron_in_the_server_timezone():
    """08:00 in New York is 13:00 UTC: at 12:00 UTC Monday it is not yet due, at 13:00 it is."""
    ny = ZoneInfo("America/New_York")
    since = MON_23 - timedelta(days=1)
    assert not missed_since(WEEKLY, ny, since, datetime(2026, 11, 23, 12, 59, tzinfo=UTC))
    assert missed_since(WEEKLY, ny, since, datetime(2026, 11, 23, 13, 0, tzinfo=UTC))


def test_missed_since_for_a_monthly_schedule():
    """The monthly alumni run on the 1st is missed by a gap across the 1st only."""
    monthly = "0 8 1 * *"
    assert missed_since(
        monthly, UTC_ZONE, datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    )
    assert not missed_since(
        monthly, UTC_ZONE, datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    )


# --- catch-up at start ---------------------------------------------------------------------------


def seed_missed_week(folder, days: int = 8) -> None:  # type: ignore[no-untyped-def]
    """A database whose list was first seen `days` ago, a member per mode, and two posts since."""
    cfg = make_config(folder)
    store = open_store(cfg.database_url)
    now = datetime.now(UTC)
    try:
        with store.session() as s:
            s.add(ListState(name="networking", first_seen=now - timedelta(days=days)))
            for address, delivery in (
                (DIGEST_MEMBER, "digest"),
                (REGULAR_MEMBER, "regular"),
                (ALUMNI_MEMBER, "alumni"),
            ):
                members.upsert_member(
                    s,
                    "networking",
                    address,
                    now - timedelta(days=days),
                    status="active",
                    delivery=delivery,
                )
            for n, days_ago in enumerate((3, 1)):
                mid = f"<missed-{n}@example.com>"
                raw = make_message(f"""
                    From: Ann Lee <ann@example.com>
                    To: networking@{DOMAIN}
                    Subject: Lead number {n}
                    Message-ID: {mid}

                    A job lead.
                    """)
                s.add(
                    Post(
                        list_name="networking",
                        message_id=mid,
                        sender=REGULAR_MEMBER,
                        from_header="Ann Lee <ann@example.com>",
                        subject=f"Lead number {n}",
                        received_at=now - timedelta(days=days_ago),
                        raw=raw,
                        thread_key=mid,
                    )
                )
    finally:
        store.dispose()


async def catch_ups_finished() -> None:
    """Wait for every server's start-up catch-up task in this loop."""
    await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name() == "digest-catch-up"))


def digests_sent(srv) -> int:  # type: ignore[no-untyped-def]
    """Regular digests built and queued (an alumni run may also catch up, near the 1st)."""
    with srv.store.session() as s:
        q = select(DigestRun).where(DigestRun.kind == "regular", DigestRun.outbound_id.is_not(None))
        return len(list(s.exec(q)))


def nothing_queued(srv) -> bool:  # type: ignore[no-untyped-def]
    with srv.store.session() as s:
        return not list(s.exec(select(Delivery).where(Delivery.state.in_(("queued", "sending")))))


async def test_start_sends_the_weekly_digest_missed_while_down_once(tmp_path, sink, server_factory):
    """A server started after a missed Monday run sends that digest; a restart does not send it again."""
    seed_missed_week(tmp_path)

    srv = await server_factory()
    await catch_ups_finished()

    await wait_for(lambda: sink.to(DIGEST_MEMBER), what="the missed digest")
    digest = sink.to(DIGEST_MEMBER)[0].msg
    assert digest["Subject"].startswith("[networking] Weekly digest, ")
    assert digest["Subject"].endswith("(2 messages)")
    assert sink.to(REGULAR_MEMBER) == []
    await srv.stop()

    again = await server_factory()
    await catch_ups_finished()
    again.deliverer.wake()
    await wait_for(lambda: nothing_queued(again), what="an idle queue")

    assert len(sink.to(DIGEST_MEMBER)) == 1
    assert digests_sent(again) == 1


async def test_start_after_a_long_outage_sends_each_missed_kind_once(
    tmp_path, sink, server_factory
):
    """Down for 40 days: one weekly digest and one alumni update go out at start, not one per missed date."""
    seed_missed_week(tmp_path, days=40)

    srv = await server_factory()
    await catch_ups_finished()

    await wait_for(lambda: sink.to(DIGEST_MEMBER) and sink.to(ALUMNI_MEMBER), what="both digests")
    await wait_for(lambda: nothing_queued(srv), what="an idle queue")
    assert len(sink.to(DIGEST_MEMBER)) == 1
    assert sink.to(ALUMNI_MEMBER)[0].msg["Subject"].startswith("[networking] Alumni update")
    assert len(sink.to(ALUMNI_MEMBER)) == 1
    assert sink.to(REGULAR_MEMBER) == []


async def test_two_servers_starting_together_on_one_database_send_one_digest(
    tmp_path, sink, server_factory
):
    """Two instances on the same SQLite database both catch up; the member gets one digest."""
    seed_missed_week(tmp_path)

    first, second = await asyncio.gather(server_factory(), server_factory())
    await catch_ups_finished()

    assert first.smtp_port != second.smtp_port
    await wait_for(lambda: sink.to(DIGEST_MEMBER), what="the missed digest")
    for srv in (first, second):
        srv.deliverer.wake()
    await wait_for(lambda: nothing_queued(first), what="an idle queue")
    assert len(sink.to(DIGEST_MEMBER)) == 1
    assert digests_sent(first) == 1


async def test_start_with_a_fresh_database_sends_no_digest(sink, server_factory):
    """A list seen for the first time has missed nothing: no digest at start."""
    srv = await server_factory()
    await catch_ups_finished()

    assert digests_sent(srv) == 0
    with srv.store.session() as s:
        assert s.get(ListState, "networking") is not None


# --- planning ------------------------------------------------------------------------------------


def jobs(srv) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {job.id: str(job.trigger) for job in srv.scheduler.aps.get_jobs()}


async def test_start_plans_a_cron_job_per_list_and_kind_plus_maintenance(server):
    """One job for the regular digest, one for the alumni digest, one for daily maintenance."""
    planned = jobs(server)

    assert set(planned) == {"digest:networking:regular", "digest:networking:alumni", "maintenance"}
    assert "day_of_week='mon', hour='8', minute='0'" in planned["digest:networking:regular"]
    assert (
        "day='1'" in planned["digest:networking:alumni"]
        and "hour='8'" in planned["digest:networking:alumni"]
    )


async def test_reload_replans_the_jobs_from_the_new_config(server, sink):
    """After a reload the jobs follow the new schedules and lists; alumni off removes its job."""
    new = config_text(
        relay=f"smtp://127.0.0.1:{sink.port}",
        list_extra=(
            '\n[lists.networking.digest]\nschedule = "30 6 * * fri"\n'
            "\n[lists.networking.alumni]\nenabled = false\n"
            '\n[lists.alumni_club]\ntitle = "Alumni club"\n'
        ),
    )
    server.cfg.path.write_text(new)

    server.reload()

    planned = jobs(server)
    assert set(planned) == {
        "digest:networking:regular",
        "digest:alumni_club:regular",
        "digest:alumni_club:alumni",
        "maintenance",
    }
    assert "day_of_week='fri', hour='6', minute='30'" in planned["digest:networking:regular"]


async def test_reload_with_a_bad_config_keeps_the_old_jobs(server):
    """A broken file on reload is refused: the jobs stay as they were."""
    before = jobs(server)
    server.cfg.path.write_text(
        server.cfg.path.read_text() + '\n[lists.networking.digest]\nschedule = "never"\n'
    )

    server.reload()

    assert jobs(server) == before


@pytest.mark.parametrize("kind", ["regular", "alumni"])
async def test_scheduled_job_runs_the_digest_of_its_list_and_kind(server, kind):
    """Firing a planned job runs that list's digest of that kind (recorded as a DigestRun)."""
    await catch_ups_finished()
    job = server.scheduler.aps.get_job(f"digest:networking:{kind}")

    await job.func(*job.args)

    with server.store.session() as s:
        runs = list(s.exec(select(DigestRun)))
    assert [(r.list_name, r.kind) for r in runs] == [("networking", kind)]
