"""2. Keep accepted mail (group commit), then claim it and hand each message to dispatch.

Nothing accepted is lost (issue 10): every step after the 250 runs under a handler that keeps
the message; a failure is retried with backoff, then parked with its reason and reported to
the owners (`listserv inbound --failed`, `listserv inbound retry ID`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from listserv import dispatch
from listserv.addresses import split_recipient
from listserv.config import Config
from listserv.delivery import Deliverer, Handoff, retry_delay
from listserv.dmarc import DmarcPolicies
from listserv.instances import is_dead_here, make_instance_id
from listserv.message import Incoming, RawMessage
from listserv.notices import notice
from listserv.sender_auth import SenderAuths
from listserv.store import Store, inbound, outbound
from listserv.store.tables import Inbound

log = logging.getLogger("listserv.inbound")

RETRY_CAP = timedelta(hours=1)  # a failing message is tried again at least hourly
LEASE = timedelta(minutes=5)  # another instance's claim waits this long
MAX_BATCH = 200  # saves per writer job
MAX_HANDED = 50  # messages handed over in memory handled per pass
LEASE_MARGIN = timedelta(minutes=1)  # a handed message this near its lease's end is claimed anew
BATCH_SECONDS = 0.05  # handling a batch stops after this, so saves wait at most about this long
GATHER = 0.05  # messages this close together are a stream; a pause this long ends it
HOLD = 2.0  # while a stream lasts, its messages wait at most this long to be dispatched
HOLD_BYTES = 32 * 1024 * 1024  # ... and at most this much of it waits in memory


class Writer:
    """Saves accepted mail on the store's writer thread, ahead of other writes; concurrent saves
    share one commit (group commit), and each caller returns only once its own row is durable,
    so the 250 still follows the commit. The row is saved claimed by this instance and handed
    to its worker in memory (hand), so nothing claims or re-reads it (issue 12)."""

    def __init__(
        self,
        store: Store,
        hand: Callable[[Inbound], None],
        instance_id: str = "",
    ) -> None:
        self.store = store
        self.hand = hand
        self.instance_id = instance_id or make_instance_id()
        self.waiting: list[tuple[str, list[str], bytes, asyncio.Future[int]]] = []
        self.flushing: asyncio.Task[None] | None = None

    async def save(self, mail_from: str, rcpts: Sequence[str], raw: bytes) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.append((mail_from, list(rcpts), raw, future))
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """The saves that came while the last batch was written go as one writer job."""
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            saves = [(f, r, raw) for f, r, raw, _ in batch]
            try:
                rows = await self.store.write(functools.partial(self._write, saves), urgent=True)
            except Exception as exc:  # noqa: BLE001 - every caller answers 451
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), row in zip(batch, rows, strict=True):
                self.hand(row)
                if not future.done():
                    future.set_result(row.id or 0)

    def _write(self, saves: list[tuple[str, list[str], bytes]], s: Session) -> list[Inbound]:
        now = datetime.now(UTC)
        until = now + LEASE
        return [
            inbound.save_claimed(s, mail_from, rcpts, raw, now, self.instance_id, until)
            for mail_from, rcpts, raw in saves
        ]


class InboundWorker:
    """Takes accepted messages from the store and dispatches them; wakes delivery after."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        dmarc: DmarcPolicies | None,
        deliverer: Deliverer,
        sender_auth: SenderAuths | None = None,
        instance_id: str = "",
    ) -> None:
        self.store = store
        self.config = config  # a callable, so a reload takes effect for the next message
        self.dmarc = dmarc
        self.deliverer = deliverer  # sends what dispatch queued (claim_in, then hand)
        self.sender_auth = sender_auth if sender_auth is not None else SenderAuths()
        self.instance_id = instance_id or make_instance_id()
        self.wakeup = asyncio.Event()
        self.handed: deque[Inbound] = deque()  # saved and claimed by this process (Writer)
        self._claimed_at = 0.0  # monotonic time of the last claim from the store
        self._loop: asyncio.AbstractEventLoop | None = None  # set by run(), for hand_copies
        self._arrived = 0.0  # monotonic time the last message was handed over
        self._flowing = False  # the last two came within GATHER of each other
        self._oldest = 0.0  # monotonic time the oldest message in handed was handed over
        self._held_bytes = 0  # of the messages in handed
        self._claim_now = True

    def wake(self) -> None:
        self.wakeup.set()

    def hand(self, row: Inbound) -> None:
        """A message this process just saved, claimed for this instance: handled next."""
        now = time.monotonic()
        self._flowing = now - self._arrived < GATHER
        self._arrived = now
        if not self.handed:
            self._oldest, self._held_bytes = now, 0
        self._held_bytes += len(row.raw)
        self.handed.append(row)
        self.wakeup.set()

    async def gather(self, stop: asyncio.Event) -> None:
        """Intake first: while mail streams in, dispatch waits until the stream pauses for
        GATHER, its oldest message has waited HOLD, or HOLD_BYTES of it wait; then the
        messages share writer jobs, commits and delivery passes. Dispatching each message of a
        stream as it came took the CPU from the SMTP side and cost twice the CPU per post
        (issue 12). A lone message is not held up."""
        while self._flowing and self.handed and not stop.is_set():
            now = time.monotonic()
            until = min(self._arrived + GATHER, self._oldest + HOLD)
            if now >= until or self._held_bytes >= HOLD_BYTES:
                return
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), until - now)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            taken = await asyncio.to_thread(self.take_back)
            if taken:
                log.info("took back %d unfinished inbound message(s) of a dead instance", taken)
        except Exception:  # noqa: BLE001 - their leases still run out
            log.exception("could not take back unfinished inbound messages")
        while not stop.is_set():
            await self.gather(stop)
            # Clear before the pass, not after: a wake-up (a new message, or stop) that comes
            # while the pass runs must not be lost, or we would sleep on it.
            self.wakeup.clear()
            try:
                handled = await asyncio.to_thread(self.process)
            except Exception:  # noqa: BLE001 - keep serving; the message stays stored
                log.exception("inbound pass failed; retrying shortly")
                handled = 0
            if handled:
                continue
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=await self._idle_wait())
            except TimeoutError:  # a retry is due, or a second passed: look in the store
                self._claim_now = True
        await self._give_back()

    async def _give_back(self) -> None:
        """At a stop: messages handed over but not handled are released for the next start."""
        ids = [row.id for row in self.handed if row.id is not None]
        self.handed.clear()
        if ids:
            try:
                await self.store.write(lambda s: inbound.release(s, ids))
            except Exception:  # noqa: BLE001 - their claims are taken back at the next start
                log.exception("could not release %d inbound message(s)", len(ids))

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

    def take(self) -> list[Inbound]:
        """The messages to handle now: those this process saved and still holds the claim on,
        and, after an idle wait, a release or at least every second (for retries, messages
        saved by the CLI or before a restart, other instances' lapsed claims), a claim from
        the store."""
        now = datetime.now(UTC)
        rows: list[Inbound] = []
        while self.handed and len(rows) < MAX_HANDED:
            row = self.handed.popleft()
            self._held_bytes -= len(row.raw)  # a hint for gather(), never exact across threads
            until = row.claimed_until
            if until is not None and until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            if until is not None and until - LEASE_MARGIN > now:
                rows.append(row)
            else:  # our lease ran out (a long backlog): the claim below takes it, or another did
                self._claim_now = True
        if self._claim_now or time.monotonic() - self._claimed_at > 1.0:
            self._claim_now = False
            self._claimed_at = time.monotonic()
            taken = {row.id for row in rows}
            claimed = self.store.submit(
                lambda s: inbound.claim_inbound(s, now, LEASE, self.instance_id, MAX_HANDED)
            ).result()
            rows += [row for row in claimed if row.id not in taken]
            if len(claimed) == MAX_HANDED:  # a backlog: claim again next pass, not in a second
                self._claim_now = True
        return rows

    def process(self) -> int:
        """Handle a batch of due messages (blocking): taken as above, parsed outside any
        transaction, then handled in writer jobs of at most BATCH_SECONDS each, every message
        under its own savepoint, so a job's messages share one commit and one message's failure
        touches only that message. The copies each job claimed go to delivery as it commits.
        Returns how many messages were taken."""
        rows = self.take()
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
        try:
            while ready or failures or interrupted:
                job = functools.partial(
                    self.handle,
                    cfg=cfg,
                    now=now,
                    ready=ready,
                    failures=failures,
                    interrupted=interrupted,
                )
                try:
                    done, handoff, left = self.store.submit(job).result()
                except BaseException:  # nothing of this job was kept: it is handled next pass
                    self.handed.extendleft(reversed([row for row, _ in ready] + interrupted))
                    self.handed.extendleft(reversed([row for row, _ in failures]))
                    raise
                parked += done
                self.hand_copies(handoff)
                ready, failures, interrupted = left, [], []
        finally:  # what the jobs that committed parked is told, even if a later one failed
            self.tell_parked(cfg, parked, now)
        return len(rows)

    def tell_parked(
        self, cfg: Config, parked: list[tuple[Inbound, str, int]], now: datetime
    ) -> None:
        for row, error, attempts in parked:
            try:
                self.store.submit(
                    lambda s, row=row, error=error, attempts=attempts: tell_owners(  # type: ignore[misc]
                        s, cfg, row, error, attempts, now
                    )
                ).result()
            except Exception:  # noqa: BLE001 - the message stays parked and listed
                log.exception("could not tell the owners about parked message %s", row.id)

    def hand_copies(self, handoff: Handoff | None) -> None:
        """From process()'s thread: delivery starts on a job's copies while the next runs
        (None: the job claimed none, delivery is woken to claim them itself)."""
        if self._loop is None:
            return  # not running: delivery finds them in its next pass
        if handoff is None:
            self._loop.call_soon_threadsafe(self.deliverer.wake)
        else:
            self._loop.call_soon_threadsafe(self.deliverer.hand, handoff)

    def handle(
        self,
        s: Session,
        cfg: Config,
        now: datetime,
        ready: list[tuple[Inbound, Incoming]],
        failures: list[tuple[Inbound, str]],
        interrupted: list[Inbound],
    ) -> tuple[list[tuple[Inbound, str, int]], Handoff | None, list[tuple[Inbound, Incoming]]]:
        """The write half of process(), in the writer's transaction; returns what was parked,
        the copies due now, claimed in the same commit as the dispatch that queued them (one
        commit and one read of each body fewer per post, issue 12), and the messages left for
        the next job once this one has run BATCH_SECONDS (so saves wait at most that long)."""
        failures = list(failures)
        parked: list[tuple[Inbound, str, int]] = []
        started = time.monotonic()
        queued_after = outbound.last_delivery_id(s)  # the copies this job queues come after
        auth = self.sender_auth.offline()  # keys were looked up in prepare()
        left: list[tuple[Inbound, Incoming]] = []
        for i, (row, inc) in enumerate(ready):
            assert row.id is not None
            if i and time.monotonic() - started > BATCH_SECONDS:  # keep the write lock short
                left = ready[i:]
                break
            try:
                begun = time.monotonic()
                with s.begin_nested():
                    done = dispatch.handle_inbound(s, cfg, row, now, self.dmarc, auth, inc=inc)
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
            log.error("inbound message %s parked after %d tries: %s", row.id, row.attempts, error)
            parked.append((row, error, row.attempts))
        handoff = None
        if ready and self._loop is not None:  # only a running worker can hand them over
            try:
                with s.begin_nested():
                    handoff = self.deliverer.claim_in(s, datetime.now(UTC), queued_after)
            except Exception:  # noqa: BLE001 - delivery claims them itself instead
                log.exception("could not claim the copies just queued")
        return parked, handoff, left

    def prepare(self, cfg: Config, row: Inbound, now: datetime) -> Incoming:
        """Parse, read the body and look up DMARC and DKIM keys before any write transaction."""
        inc = Incoming(raw=row.raw, mail_from=row.mail_from, msg=RawMessage(row.raw), now=now)
        inc.text()
        dispatch.read_ahead(cfg, inc, [r.lower() for r in json.loads(row.rcpts)])
        if inc.sender:  # handle() asks only the cache: DNS must not stall the writer (issue 12)
            self.sender_auth(cfg.server.sender_auth).prefetch(row.raw, inc.sender)
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
