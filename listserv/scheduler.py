"""APScheduler wiring: a cron job per list and digest kind, daily bounce upkeep, catch-up at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from listserv.bounces import score as bounces
from listserv.config import Config
from listserv.digest import runs as digest_runs
from listserv.states import DigestKind
from listserv.store import Store, maintenance

log = logging.getLogger("listserv.scheduler")

MAINTENANCE_CRON = "17 3 * * *"  # bounce score upkeep and probes, daily


def digest_jobs(cfg: Config) -> list[tuple[str, DigestKind, str]]:
    """(list, kind, cron) for every digest the config asks for."""
    jobs: list[tuple[str, DigestKind, str]] = []
    for name, lst in cfg.lists.items():
        jobs.append((name, DigestKind.REGULAR, lst.digest.schedule))
        if lst.alumni.enabled:
            jobs.append((name, DigestKind.ALUMNI, lst.alumni.schedule))
    return jobs


def missed_since(cron: str, tz: ZoneInfo, since: datetime, now: datetime) -> bool:
    """True when the cron schedule had a fire time in (since, now]."""
    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    nxt = trigger.get_next_fire_time(None, since + timedelta(microseconds=1))
    return nxt is not None and nxt <= now


class Scheduler:
    """Owns the AsyncIOScheduler of a running server: digests on their cron, daily upkeep."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        wake: Callable[[], None],
        instance_id: str = "",
    ) -> None:
        self.store = store
        self.instance_id = instance_id
        self.config = config  # a callable: after a reload, jobs read the new config
        self.wake = wake  # tells delivery that copies were queued
        self.aps = AsyncIOScheduler(timezone=ZoneInfo(config().server.timezone))

    @property
    def running(self) -> bool:
        return bool(self.aps.running)

    def start(self) -> None:
        self.plan()
        self.aps.start()
        asyncio.get_running_loop().create_task(self.catch_up(), name="digest-catch-up")

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    def plan(self) -> None:
        cfg = self.config()
        tz = ZoneInfo(cfg.server.timezone)
        self.aps.remove_all_jobs()
        for name, kind, cron in digest_jobs(cfg):
            self.aps.add_job(
                self.run_digest,
                CronTrigger.from_crontab(cron, timezone=tz),
                args=(name, kind),
                id=f"digest:{name}:{kind}",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=3600,
                replace_existing=True,
            )
        self.aps.add_job(
            self.maintain,
            CronTrigger.from_crontab(MAINTENANCE_CRON, timezone=tz),
            id="maintenance",
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

    def replan(self) -> None:
        """After a reload: the jobs follow the new config."""
        self.plan()
        log.info("scheduler re-planned: %d job(s)", len(self.aps.get_jobs()))

    async def run_digest(self, name: str, kind: str) -> None:
        try:
            outcome = await asyncio.to_thread(
                digest_runs.run_digest, self.store, self.config(), name, kind, datetime.now(UTC)
            )
            log.info("digest %s/%s: %s", name, kind, outcome)
            self.wake()
        except Exception:  # noqa: BLE001 - a failed run is retried by the next trigger or start
            log.exception("digest %s/%s failed", name, kind)

    async def catch_up(self) -> None:
        """Send once, now, any digest whose scheduled time passed while we were down."""
        cfg = self.config()
        tz = ZoneInfo(cfg.server.timezone)
        now = datetime.now(UTC)
        for name, kind, cron in digest_jobs(cfg):
            since = await asyncio.to_thread(
                digest_runs.last_period_end, self.store, name, kind, now
            )
            if missed_since(cron, tz, since, now):
                log.info(
                    "digest %s/%s was missed while the server was down; sending it now", name, kind
                )
                await self.run_digest(name, kind)

    async def maintain(self) -> bool:
        """The daily bounce upkeep; with several instances on one database, the first one to
        take the day's run key does it and the others skip (issue 14). True when it ran here."""

        def work() -> bool:
            cfg, now = self.config(), datetime.now(UTC)
            day = now.astimezone(ZoneInfo(cfg.server.timezone)).date()
            with self.store.session() as s:
                if not maintenance.start_run(s, day, self.instance_id, now):
                    log.info("daily maintenance for %s already ran on another instance", day)
                    return False
            for lst in cfg.lists.values():
                with self.store.session() as s:
                    bounces.maintain(s, lst, cfg.site, now)
            return True

        try:
            ran = await asyncio.to_thread(work)
            self.wake()
            return ran
        except Exception:  # noqa: BLE001
            log.exception("daily maintenance failed")
            return False
