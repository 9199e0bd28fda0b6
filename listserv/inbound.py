"""2. Claim stored mail and hand it to dispatch, each message in its own transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from listserv import dispatch
from listserv.config import Config
from listserv.dmarc import DmarcPolicies
from listserv.sender_auth import SenderAuths
from listserv.store import Store, inbound

log = logging.getLogger("listserv.inbound")

LEASE = timedelta(minutes=5)


class InboundWorker:
    """Takes accepted messages from the store and dispatches them; wakes delivery after."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        dmarc: DmarcPolicies | None,
        delivered: Callable[[], None],
        sender_auth: SenderAuths | None = None,
    ) -> None:
        self.store = store
        self.config = config  # a callable, so a reload takes effect for the next message
        self.dmarc = dmarc
        self.delivered = delivered
        self.sender_auth = sender_auth if sender_auth is not None else SenderAuths()
        self.wakeup = asyncio.Event()

    def wake(self) -> None:
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Clear before the pass, not after: a wake-up (a new message, or stop) that comes
            # while the pass runs must not be lost, or we would sleep a full second on it.
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
                await asyncio.wait_for(self.wakeup.wait(), timeout=1.0)

    def process(self) -> int:
        """Handle stored messages; each in its own transaction with its effects (blocking)."""
        with self.store.session() as s:
            rows = inbound.claim_inbound(s, datetime.now(UTC), LEASE)
        cfg = self.config()
        for row in rows:
            assert row.id is not None
            try:
                started = time.monotonic()
                with self.store.session() as s:
                    done = dispatch.handle_inbound(
                        s, cfg, row, datetime.now(UTC), self.dmarc, self.sender_auth
                    )
                    inbound.finish_inbound(s, row.id)
                log_handled(row.id, row.mail_from, done, time.monotonic() - started)
            except Exception as exc:  # noqa: BLE001 - log, keep the message, go on with the next
                log.exception("could not handle inbound message %s", row.id)
                with self.store.session() as s:
                    inbound.finish_inbound(s, row.id, error=f"{type(exc).__name__}: {exc}")
        return len(rows)


def log_handled(inbound_id: int, mail_from: str, done: list[str], seconds: float) -> None:
    """The one INFO line per message handled: who, to which address, what happened, how long."""
    log.info(
        "message %s from %s: %s (%.0f ms)",
        inbound_id,
        mail_from or "<>",
        "; ".join(done) or "nothing to do",
        seconds * 1000,
    )
