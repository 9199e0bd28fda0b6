"""2. Keep accepted mail (group commit), then claim it and hand each message to dispatch.

Nothing accepted is lost (issue 10): every step after the 250 runs under a handler that keeps
the message; a failure is retried with backoff, then parked with its reason and reported to
the owners (`listserv inbound --failed`, `listserv inbound retry ID`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from listserv import dispatch
from listserv.addresses import split_recipient
from listserv.config import Config
from listserv.delivery import retry_delay
from listserv.dmarc import DmarcPolicies
from listserv.instances import is_dead_here, make_instance_id
from listserv.message import Incoming, RawMessage
from listserv.notices import notice
from listserv.sender_auth import SenderAuths
from listserv.store import Store, inbound
from listserv.store.tables import Inbound

log = logging.getLogger("listserv.inbound")

RETRY_CAP = timedelta(hours=1)  # a failing message is tried again at least hourly
LEASE = timedelta(minutes=5)  # another instance's claim waits this long
MAX_BATCH = 200  # messages per group commit
BATCH_SECONDS = 0.05  # handling a batch stops after this, so saves wait at most about this long


class Writer:
    """One writer for accepted mail: concurrent saves share one commit (group commit), and each
    caller returns only once its own row is durable, so the 250 still follows the commit."""

    def __init__(self, store: Store, wake: Callable[[], None]) -> None:
        self.store = store
        self.wake = wake
        self.waiting: list[tuple[str, list[str], bytes, asyncio.Future[int]]] = []
        self.flushing: asyncio.Task[None] | None = None

    async def save(self, mail_from: str, rcpts: Sequence[str], raw: bytes) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.append((mail_from, list(rcpts), raw, future))
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            try:
                ids = await asyncio.to_thread(self._write, [(f, r, raw) for f, r, raw, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every caller answers 451
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), row_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(row_id)
            self.wake()

    def _write(self, batch: list[tuple[str, list[str], bytes]]) -> list[int]:
        with self.store.session(urgent=True) as s:
            return inbound.save_many(s, batch, datetime.now(UTC))


class InboundWorker:
    """Takes accepted messages from the store and dispatches them; wakes delivery after."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        dmarc: DmarcPolicies | None,
        delivered: Callable[[], None],
        sender_auth: SenderAuths | None = None,
        instance_id: str = "",
    ) -> None:
        self.store = store
        self.config = config  # a callable, so a reload takes effect for the next message
        self.dmarc = dmarc
        self.delivered = delivered
        self.sender_auth = sender_auth if sender_auth is not None else SenderAuths()
        self.instance_id = instance_id or make_instance_id()
        self.wakeup = asyncio.Event()

    def wake(self) -> None:
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            taken = await asyncio.to_thread(self.take_back)
            if taken:
                log.info("took back %d unfinished inbound message(s) of a dead instance", taken)
        except Exception:  # noqa: BLE001 - their leases still run out
            log.exception("could not take back unfinished inbound messages")
        while not stop.is_set():
            # Clear before the pass, not after: a wake-up (a new message, or stop) that comes
            # while the pass runs must not be lost, or we would sleep on it.
            self.wakeup.clear()
            try:
                handled = await asyncio.to_thread(self.process)
            except Exception:  # noqa: BLE001 - keep serving; the message stays stored
                log.exception("inbound pass failed; retrying shortly")
                handled = 0
            if handled:
                self.delivered()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=await self._idle_wait())

    async def _idle_wait(self) -> float:
        """Until the next retry is due, at most a second (other instances' leases lapse)."""
        try:
            due = await asyncio.to_thread(self._next_due)
        except Exception:  # noqa: BLE001
            return 1.0
        if due is None:
            return 1.0
        return min(max((due - datetime.now(UTC)).total_seconds(), 0.01), 1.0)

    def _next_due(self) -> datetime | None:
        with self.store.reader() as s:
            due = inbound.next_due(s)
        return due if due is None or due.tzinfo else due.replace(tzinfo=UTC)

    def take_back(self) -> int:
        """At start: claims of this host's dead processes are released at once (SPEC 6)."""
        with self.store.reader() as s:
            dead = [i for i in inbound.claimants(s) if is_dead_here(i)]
        if not dead:
            return 0
        with self.store.session() as s:
            return inbound.take_back(s, dead)

    def process(self) -> int:
        """Handle a batch of due messages (blocking): claimed in one short transaction, parsed
        outside any, then handled in one more, each under its own savepoint, so the batch
        shares one commit and one message's failure touches only that message."""
        with self.store.session() as s:
            rows = inbound.claim_inbound(s, datetime.now(UTC), LEASE, self.instance_id)
        if not rows:
            return 0
        cfg = self.config()
        now = datetime.now(UTC)
        ready: list[tuple[Inbound, Incoming]] = []
        failures: list[tuple[Inbound, str]] = []
        interrupted: list[Inbound] = []
        for row in rows:
            if row.attempts >= cfg.server.inbound_attempts:  # interrupted that often: park it
                interrupted.append(row)
                continue
            try:
                ready.append((row, self.prepare(cfg, row, now)))
            except Exception as exc:  # noqa: BLE001 - keep the message for a retry
                log.exception("could not read inbound message %s", row.id)
                failures.append((row, f"{type(exc).__name__}: {exc}"))
        parked: list[tuple[Inbound, str, int]] = []
        with self.store.session() as s:
            started = time.monotonic()
            for i, (row, inc) in enumerate(ready):
                assert row.id is not None
                if time.monotonic() - started > BATCH_SECONDS:  # keep the write lock short
                    inbound.release(s, [r.id for r, _ in ready[i:] if r.id is not None])
                    break
                try:
                    begun = time.monotonic()
                    with s.begin_nested():
                        done = dispatch.handle_inbound(
                            s, cfg, row, now, self.dmarc, self.sender_auth, inc=inc
                        )
                        inbound.finish_inbound(s, row.id)
                    log_handled(row.id, row.mail_from, done, time.monotonic() - begun)
                except Exception as exc:  # noqa: BLE001 - keep the message, go on with the next
                    log.exception("could not handle inbound message %s", row.id)
                    failures.append((row, f"{type(exc).__name__}: {exc}"))
            for row, error in failures:
                if self.failed(s, cfg, row, error[:1000], now):
                    parked.append((row, error[:1000], row.attempts + 1))
            for row in interrupted:
                assert row.id is not None
                error = row.error or "interrupted"
                inbound.finish_inbound(s, row.id, error=error, attempts=row.attempts)
                log.error(
                    "inbound message %s parked after %d tries: %s", row.id, row.attempts, error
                )
                parked.append((row, error, row.attempts))
        for row, error, attempts in parked:
            try:
                started = time.monotonic()
                with self.store.session() as s:
                    tell_owners(s, cfg, row, error, attempts, now)
            except Exception:  # noqa: BLE001 - the message stays parked and listed
                log.exception("could not tell the owners about parked message %s", row.id)
        return len(rows)

    def prepare(self, cfg: Config, row: Inbound, now: datetime) -> Incoming:
        """Parse, read the body and look up DMARC before any write transaction."""
        inc = Incoming(raw=row.raw, mail_from=row.mail_from, msg=RawMessage(row.raw), now=now)
        inc.text()
        if self.dmarc is not None and any(lst.dmarc != "none" for lst in cfg.lists.values()):
            author = inc.sender or ""
            with contextlib.suppress(Exception):  # a failed lookup is retried inside
                self.dmarc.policy(author.rpartition("@")[2])
        return inc

    def failed(self, s: Session, cfg: Config, row: Inbound, error: str, now: datetime) -> bool:
        """Record a failed try; True when that was the last one and the message is parked."""
        assert row.id is not None
        attempts = row.attempts + 1
        if attempts < cfg.server.inbound_attempts:
            at = now + retry_delay(attempts, cfg.server.inbound_retry_seconds, RETRY_CAP)
            inbound.retry_later(s, row.id, error, attempts, at)
            return False
        inbound.finish_inbound(s, row.id, error=error, attempts=attempts)
        log.error("inbound message %s parked after %d tries: %s", row.id, attempts, error)
        return True


def tell_owners(
    s: Session, cfg: Config, row: Inbound, error: str, attempts: int, now: datetime
) -> None:
    """An owner notice for each list the parked message was for."""
    try:
        msg = RawMessage(row.raw)
        subject, sender = msg.get("subject")[:200], msg.get("from")[:200]
    except Exception:  # noqa: BLE001 - the notice must not fail on the message it reports
        subject, sender = "", ""
    names = frozenset(cfg.lists)
    lists = {
        found[0]
        for rcpt in json.loads(row.rcpts)
        if (found := split_recipient(rcpt, cfg.server.domain, names)) is not None
    }
    for name in sorted(lists):
        lst = cfg.lists[name]
        notice(
            s,
            lst,
            cfg.site,
            list(lst.owners),
            "admin/inbound_parked.txt",
            now,
            inbound_id=row.id,
            mail_from=row.mail_from or "<>",
            from_header=" ".join(sender.split()),
            subject=" ".join(subject.split()),
            error=error,
            attempts=attempts,
        )


def log_handled(inbound_id: int, mail_from: str, done: list[str], seconds: float) -> None:
    """The one INFO line per message handled: who, to which address, what happened, how long."""
    log.info(
        "message %s from %s: %s (%.0f ms)",
        inbound_id,
        mail_from or "<>",
        "; ".join(done) or "nothing to do",
        seconds * 1000,
    )
