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
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from listserv import dispatch
from listserv.addresses import split_recipient
from listserv.config import Config
from listserv.dmarc import DmarcPolicies
from listserv.message import Incoming, RawMessage
from listserv.notices import notice
from listserv.store import Store, inbound
from listserv.store.tables import Inbound

log = logging.getLogger("listserv.inbound")

LEASE = timedelta(minutes=5)  # another instance's claim waits this long
MAX_BATCH = 200  # messages per group commit


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
        with self.store.session() as s:
            return inbound.save_many(s, batch, datetime.now(UTC))


def new_instance_id() -> str:
    """host/pid/random: claims name the process that holds them (issue 10 part 4)."""
    return f"{socket.gethostname()}/{os.getpid()}/{os.urandom(3).hex()}"


def is_dead_here(instance: str) -> bool:
    """True for an instance id of this host whose process is gone (a kill -9, a crash)."""
    host, _, rest = instance.partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # a Server of this very process (tests run several): not ours to take
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def backoff(attempts: int, initial: float) -> timedelta:
    """initial, 2x, 4x ... capped at an hour."""
    return timedelta(seconds=min(initial * 2 ** max(attempts - 1, 0), 3600.0))


class InboundWorker:
    """Takes accepted messages from the store and dispatches them; wakes delivery after."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        dmarc: DmarcPolicies | None,
        delivered: Callable[[], None],
        instance_id: str = "",
    ) -> None:
        self.store = store
        self.config = config  # a callable, so a reload takes effect for the next message
        self.dmarc = dmarc
        self.delivered = delivered
        self.instance_id = instance_id or new_instance_id()
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
        """Handle due messages, each in one short transaction with its effects (blocking)."""
        with self.store.session() as s:
            rows = inbound.claim_inbound(s, datetime.now(UTC), LEASE, self.instance_id)
        for row in rows:
            self.handle(row)
        return len(rows)

    def handle(self, row: Inbound) -> None:
        """One message: parse first, then one write; any failure keeps it for a retry."""
        assert row.id is not None
        cfg = self.config()
        now = datetime.now(UTC)
        try:
            inc = Incoming(raw=row.raw, mail_from=row.mail_from, msg=RawMessage(row.raw), now=now)
            inc.text()  # parse and read the body outside the write transaction
            with self.store.session() as s:
                dispatch.handle_inbound(s, cfg, row, now, self.dmarc, inc=inc)
                inbound.finish_inbound(s, row.id)
        except Exception as exc:  # noqa: BLE001 - keep the message, go on with the next
            log.exception("could not handle inbound message %s", row.id)
            self.failed(row, cfg, f"{type(exc).__name__}: {exc}"[:1000])

    def failed(self, row: Inbound, cfg: Config, error: str) -> None:
        assert row.id is not None
        attempts = row.attempts + 1
        now = datetime.now(UTC)
        if attempts < cfg.server.inbound_attempts:
            at = now + backoff(attempts, cfg.server.inbound_retry_seconds)
            with self.store.session() as s:
                inbound.retry_later(s, row.id, error, attempts, at)
            return
        with self.store.session() as s:
            inbound.finish_inbound(s, row.id, error=error, attempts=attempts)
        log.error("inbound message %s parked after %d tries: %s", row.id, attempts, error)
        try:
            with self.store.session() as s:
                tell_owners(s, cfg, row, error, attempts, now)
        except Exception:  # noqa: BLE001 - the message stays parked and listed
            log.exception("could not tell the owners about parked message %s", row.id)


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
