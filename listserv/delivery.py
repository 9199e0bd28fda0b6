"""6. The only code that sends mail: claim due copies, personalise, send over reused connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlmodel import Session

from listserv import wire
from listserv.addresses import verp_encode
from listserv.config import Config, Site
from listserv.headers import member_fields
from listserv.instances import dead_here
from listserv.message import add_fields, fold
from listserv.store import Store, outbound
from listserv.store.outbound import Claimed

log = logging.getLogger("listserv.delivery")

BATCH = 500
GATHER = 0.003  # seconds a group commit waits for the other senders' outcomes
CLOSE_TIMEOUT = 1.0  # QUIT when idle or stopping; a stop must not wait on a slow relay
RELAY_IDLE = 5.0  # seconds relay connections stay open after a pass, for the next post's copies
RETRY_CAP = timedelta(hours=2)


class TransientError(Exception):
    """The relay said 4xx or could not be reached: try again later."""


class RelayUnreachable(TransientError):
    """The relay or outbox could not be reached at all: no copy in this pass can go out."""


class PermanentError(Exception):
    """The relay said 5xx for this recipient: do not try again."""


def retry_delay(attempts: int, initial: float, cap: timedelta = RETRY_CAP) -> timedelta:
    """Exponential backoff: initial, 2x, 4x ... capped (at two hours for a copy).

    >>> retry_delay(1, 30), retry_delay(3, 30), retry_delay(9, 30, timedelta(hours=1))
    (datetime.timedelta(seconds=30), datetime.timedelta(seconds=120), datetime.timedelta(seconds=3600))
    """
    return min(timedelta(seconds=initial * 2 ** max(attempts - 1, 0)), cap)


def wire_size(data: bytes) -> int:
    r"""The RFC 1870 SIZE of data as DATA sends it: bare CR and LF count as CRLF, a final CRLF added.

    >>> wire_size(b"a\r\nb\nc"), wire_size(b"")
    (9, 2)
    """
    crlf = data.count(b"\r\n")
    size = len(data) + data.count(b"\n") + data.count(b"\r") - 2 * crlf
    return size if data.endswith((b"\r", b"\n")) else size + 2


# One copy as a relay sends it: (envelope sender, recipient, message with CRLF line ends). A
# relay's send() may be told the copy that follows on it (then=...): one that pipelines sends
# that copy's envelope with this one's end, and the caller must send that copy next.
Envelope = tuple[str, str, bytes]


class OutboxRelay:
    """Writes each copy as a .eml file, so a newcomer sees exactly what would be sent."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def send(
        self,
        sender: str,
        rcpt: str,
        data: bytes,
        tag: int,
        ready: Awaitable[None] | None = None,
        then: Envelope | None = None,
    ) -> bool:
        if ready is not None:
            await ready
        trace = fold("Return-Path", f"<{sender}>") + fold("Delivered-To", rcpt)
        name = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{tag:08d}.eml"
        tmp = self.folder / f".{name}.tmp"
        try:
            tmp.write_bytes(trace + data)
            os.replace(tmp, self.folder / name)
        except OSError as exc:
            raise RelayUnreachable(
                f"cannot write to the outbox {self.folder}: {exc.strerror}"
            ) from None
        return False  # nothing to announce to

    def kept(self) -> None:
        return None

    async def close(self) -> None:
        return None


class SmtpRelay:
    """One reused aiosmtplib connection to an smtp:// or smtps:// relay."""

    def __init__(self, url: str, helo_name: str | None = None) -> None:
        parts = urlsplit(url)
        self.helo_name = helo_name  # None: the machine's name (aiosmtplib asks the socket)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.implicit_tls = parts.scheme == "smtps"
        self.starttls = "starttls=1" in (parts.query or "") or "starttls=true" in (
            parts.query or ""
        )
        self.client: aiosmtplib.SMTP | None = None
        self.idle = False  # kept open since an earlier pass: checked before it is used again

    def kept(self) -> None:
        self.idle = self.client is not None

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            local_hostname=self.helo_name,
            timeout=60,
            use_tls=self.implicit_tls,
            start_tls=self.starttls or None,
            tls_context=ssl.create_default_context()
            if self.implicit_tls or self.starttls
            else None,
        )
        await client.connect()
        if self.username:
            await client.login(self.username, self.password or "")
        return client

    async def send(
        self,
        sender: str,
        rcpt: str,
        data: bytes,
        tag: int,
        ready: Awaitable[None] | None = None,
        then: Envelope | None = None,
    ) -> bool:
        if ready is not None:
            await ready
        if self.idle:  # the relay may have closed it meanwhile (a timeout): ask before use
            self.idle = False
            try:
                assert self.client is not None
                await self.client.rset()
            except Exception:  # noqa: BLE001 - any failure: a new connection below
                await self.close()
        if self.client is None or not self.client.is_connected:
            try:
                self.client = await self._connect()
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                # Refused, timed out, a 421 greeting or failed login: no copy can go now, and
                # none of it is the recipient's fault, so nothing here is permanent.
                await self.close()
                raise RelayUnreachable(
                    f"relay {self.host}:{self.port} unreachable: {exc}"
                ) from None
        try:
            await self._transaction(self.client, sender, rcpt, data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0] if exc.recipients else None
            code = refusal.code if refusal else 550
            self._raise(code, str(refusal.message if refusal else exc))
        except aiosmtplib.SMTPResponseException as exc:
            self._raise(exc.code, exc.message)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            await self.close()  # the next copy reconnects
            raise TransientError(
                f"relay {self.host}:{self.port} dropped the connection: {exc}"
            ) from None
        return False  # aiosmtplib sends a copy at a time

    @staticmethod
    async def _transaction(client: aiosmtplib.SMTP, sender: str, rcpt: str, data: bytes) -> None:
        """MAIL, RCPT, DATA for one copy: what sendmail() does for one recipient, minus work we
        need not repeat per copy (it parses both addresses twice, and runs a regex over the whole
        message to compute SIZE); about a fifth less client CPU per copy. mail() and rcpt()
        still refuse addresses unsafe on an SMTP command line. A refusal resets the envelope."""
        # SIZE is known once EHLO was answered (at connect); on a first message without it, skip it.
        options = [f"SIZE={wire_size(data)}"] if client.supports_extension("size") else []
        try:
            await client.mail(sender, options=options)
            await client.rcpt(rcpt)
            await client.data(data)
        except aiosmtplib.SMTPResponseException:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.rset()
            raise

    def _raise(self, code: int, message: str) -> None:
        text = f"{code} {message}".strip()
        if 400 <= code < 500:
            raise TransientError(text)
        raise PermanentError(text)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except Exception:  # noqa: BLE001 - closing a broken connection
                client.close()


class WireRelay:
    """One reused connection to a plain smtp:// relay through listserv.wire (pipelined)."""

    def __init__(self, host: str, port: int, helo_name: str = "") -> None:
        self.host, self.port, self.helo_name = host, port, helo_name
        self.conn: wire.Connection | None = None
        self.idle = False  # kept open since an earlier pass: checked before it is used again

    def kept(self) -> None:
        self.idle = self.conn is not None

    async def send(
        self,
        sender: str,
        rcpt: str,
        data: bytes,
        tag: int,
        ready: Awaitable[None] | None = None,
        then: Envelope | None = None,
    ) -> bool:
        """True when then (the copy the caller sends next, see Envelope) was announced: the
        relay waits for that copy's message now, so it must be sent next or the relay closed."""
        if self.conn is not None and self.conn.waits_for_other(sender, rcpt):
            self.conn.close()  # it waits for another copy's message, or who knows: start afresh
            self.conn, self.idle = None, False
        if self.idle and self.conn is not None:  # the relay may have closed it meanwhile (a
            self.idle = False  # timeout): ask before use
            try:
                await self.conn.reset()
            except (wire.Dropped, wire.Refused, OSError):
                await self.close()
        if self.conn is None:
            try:
                self.conn = await wire.Connection.open(self.host, self.port, self.helo_name)
            except (OSError, TimeoutError, wire.Dropped, wire.Refused) as exc:
                raise RelayUnreachable(
                    f"relay {self.host}:{self.port} unreachable: {exc}"
                ) from None
        try:
            # Deliverer's bodies have CRLF line ends (made once as each is loaded), and the
            # fields it adds are folded with CRLF: no check per copy
            await self.conn.send(sender, rcpt, data, ready, normalised=True, then=then)
            return self.conn.announced is not None
        except wire.Refused as exc:
            if exc.code == 421:  # the relay is closing this connection
                await self.close()
            if exc.code < 500:
                raise TransientError(str(exc)) from None
            raise PermanentError(str(exc)) from None
        except wire.Dropped as exc:
            await self.close()  # the next copy reconnects
            raise TransientError(
                f"relay {self.host}:{self.port} dropped the connection: {exc}"
            ) from None

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await conn.quit()


Relay = OutboxRelay | SmtpRelay | WireRelay


def make_relay(cfg: Config) -> Relay:
    """An outbox, a plain relay through listserv.wire, or aiosmtplib for TLS and AUTH."""
    relay = cfg.server.relay
    if relay.startswith("outbox:"):
        return OutboxRelay(cfg.resolve(relay.removeprefix("outbox:")))
    helo = cfg.server.helo_name or cfg.server.domain
    smtp = SmtpRelay(relay, helo)
    if smtp.implicit_tls or smtp.starttls or smtp.username:
        return smtp
    return WireRelay(smtp.host, smtp.port, helo)


@dataclass
class Results:
    """Outcomes not yet written to the store."""

    sent: list[int] = field(default_factory=list)
    deferred: list[tuple[Claimed, str]] = field(default_factory=list)
    failed: list[tuple[Claimed, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sent or self.deferred or self.failed)

    def merge(self, other: Results) -> None:
        self.sent += other.sent
        self.deferred += other.deferred
        self.failed += other.failed


@dataclass
class Handoff:
    """Copies claimed in the writer job that queued them (dispatch), with their bodies, so
    delivery starts on them without a claim or a read of its own (issue 12). fresh_until:
    the monotonic time after which they are given back unsent, half their lease after the
    claim (as for delivery's own claims)."""

    copies: list[Claimed]
    bodies: dict[int, tuple[str, bytes]]
    fresh_until: float


HANDED_BATCHES = 2  # handoffs waiting for delivery beyond which dispatch claims no more
HANDED_BODIES = 32  # bodies read with a handoff (the rest load when first sent, as before)


def _log_failed_release(done: Future[None]) -> None:
    if done.exception() is not None:  # their leases run out instead
        log.error("could not give back handed copies: %s", done.exception())


class Deliverer:
    """Claims due copies, sends them over several connections at once, records each outcome.

    Exactly once as far as SMTP allows (issue 10): a sender does not start its next copy until
    the outcome of its last one is committed (commits are grouped across senders), so a crash
    can resend at most the one copy in flight on each connection.
    """

    def __init__(
        self,
        store: Store,
        config: Callable[[], Config],
        on_failure: Callable[..., None] | None = None,
        instance_id: str = "",
    ) -> None:
        self.store = store
        self.config = config
        self.on_failure = (
            on_failure  # (session, cfg, claimed, error, permanent) in the store thread
        )
        self.instance_id = instance_id
        self.wakeup = asyncio.Event()
        self.results = Results()
        self._written: asyncio.Future[None] | None = None  # resolves when self.results is stored
        self._dirty = asyncio.Event()
        self._gathered = 0  # senders waiting on the batch not yet written
        self._active = 0  # senders still running in this pass
        self._stop = asyncio.Event()  # never set unless run() is given one
        self._cache: OrderedDict[int, asyncio.Future[tuple[str, bytes]]] = OrderedDict()
        self.handed: deque[Handoff] = deque()  # claimed by another writer job (hand)
        self._stopped = False  # run() has returned: a late handoff is given back at once
        self._store_due = True  # the store may hold due copies not handed over: claim them
        self._relays: list[Relay] = []
        self._relay_key: tuple[object, ...] | None = None
        self._last_pass = 0.0

    def wake(self) -> None:
        """There may be due copies in the store nobody claimed (new mail, a retry, a notice)."""
        self._store_due = True
        self.wakeup.set()

    def claim_in(self, s: Session, now: datetime, after_id: int) -> Handoff | None:
        """Inside the writer job that queued them (dispatch): claim the copies it queued (rows
        after after_id, at most BATCH), with their bodies; the event loop then passes the
        result to hand(). None while delivery still has HANDED_BATCHES waiting: a backlog is
        claimed by delivery itself, as it gets to it, so no lease runs out in memory."""
        if len(self.handed) >= HANDED_BATCHES:
            return None
        lease = timedelta(seconds=self.config().server.claim_lease_seconds)
        fresh_until = time.monotonic() + lease.total_seconds() / 2
        copies = outbound.claim_queued_after(s, after_id, now, lease, BATCH, self.instance_id)
        bodies = {}
        for outbound_id in sorted({c.outbound_id for c in copies})[:HANDED_BODIES]:
            if (body := outbound.outbound_raw(s, outbound_id)) is not None:
                bodies[outbound_id] = (body[0], wire.crlf(body[1]))  # once per body
        return Handoff(copies, bodies, fresh_until)

    def hand(self, handoff: Handoff) -> None:
        """Copies claimed by claim_in (in the event loop): sent in the next pass, or given
        back at once when delivery has stopped."""
        if self._stopped:
            ids = [item.id for item in handoff.copies]
            if ids:
                released = self.store.submit(lambda s: outbound.release(s, ids, self.instance_id))
                released.add_done_callback(_log_failed_release)
            return
        loop = asyncio.get_running_loop()
        for outbound_id, body in handoff.bodies.items():
            loaded: asyncio.Future[tuple[str, bytes]] = loop.create_future()
            loaded.set_result(body)
            self._remember(outbound_id, loaded)
        if handoff.copies:
            self.handed.append(handoff)
        if len(handoff.copies) >= BATCH:  # the job queued more than a batch: the rest waits
            self._store_due = True
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until stop is set; then finish the copies in flight and give back the rest."""
        self._stop = stop
        try:
            await asyncio.to_thread(self.take_back)
        except Exception:  # noqa: BLE001 - their leases will run out instead
            log.exception("could not take back the claims of a dead instance")
        while not stop.is_set():
            self.wakeup.clear()  # before the pass: a wake-up during it (new mail, stop) is kept
            try:
                await self.deliver_due(keep=True)
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the worker
                log.exception("delivery pass failed; retrying shortly")
            # A pass ends when nothing more is due; what comes during it (a handoff, new mail,
            # a stop) set the wake-up, retries come due within the second.
            if not stop.is_set():
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout=1.0)
                except TimeoutError:  # retries come due: deliver_due asks the store
                    if self._relays and time.monotonic() - self._last_pass > RELAY_IDLE:
                        await self.close_relays()
        self._stopped = True
        handed = [item.id for handoff in self.handed for item in handoff.copies]
        self.handed.clear()
        if handed:  # handed over as the stop came: due again at once for the next start
            try:
                await self._release(handed)
            except Exception:  # noqa: BLE001 - their leases run out instead
                log.exception("could not give back %d handed copies", len(handed))
        await self.close_relays()

    def take_back(self) -> int:
        """At start: copies claimed by a dead instance on this host are due again at once."""
        with self.store.session() as s:
            dead = dead_here(outbound.claimants(s, datetime.now(UTC)), self.instance_id)
            taken = outbound.take_back(s, dead)
        if taken:
            log.info("took back %d copies claimed by %s", taken, ", ".join(dead))
        return taken

    async def deliver_due(self, keep: bool = False) -> int:
        """Send everything due now (or until a stop); returns how many copies were claimed.
        keep: leave the relay connections open for the next pass (run() closes them when idle)."""
        if not self.handed:  # not for a handoff (the CLI, a test, a timer): ask the store
            self._store_due = True
        cfg = self.config()
        conns = cfg.server.delivery_connections
        lease = timedelta(seconds=cfg.server.claim_lease_seconds)
        work: asyncio.Queue[tuple[Claimed, float] | None] = asyncio.Queue(maxsize=BATCH * 2)
        unsent: list[int] = []  # claimed, then a stop or half the lease came before a try
        total = 0

        async def producer() -> None:
            nonlocal total
            try:
                while not self._stop.is_set():
                    # Past half its lease a copy still waiting here is given back, not sent:
                    # another instance may take it once the lease ends (a slow relay).
                    if self.handed:
                        handoff = self.handed.popleft()
                        batch, fresh_until = handoff.copies, handoff.fresh_until
                    elif self._store_due:  # cleared first: a wake-up during the claim is kept
                        self._store_due = False
                        batch = await self._claim(lease)
                        fresh_until = time.monotonic() + lease.total_seconds() / 2
                        if len(batch) == BATCH:
                            self._store_due = True  # more may wait behind a full batch
                    else:
                        break  # nothing handed over, nothing due in the store
                    total += len(batch)
                    for item in batch:
                        await work.put((item, fresh_until))
            except BaseException:  # a failed claim: the store is asked again next pass
                self._store_due = True
                raise
            finally:  # the senders stop after what was queued, whatever happened here
                for _ in range(conns):
                    await work.put(None)

        relays = await self._relays_for(cfg, conns)
        writer = asyncio.create_task(self._write_loop())
        try:
            down: list[str] = []  # set by the first sender that cannot reach the relay
            await asyncio.gather(
                producer(), *(self._sender(cfg, relay, work, down, unsent) for relay in relays)
            )
        finally:
            await self._flush()  # first: a sent copy is recorded before anything else can fail
            for relay in relays:
                if hasattr(relay, "kept"):  # checked (RSET) before the next pass uses it
                    relay.kept()
                else:  # a relay that cannot be checked is not kept
                    keep = False
            if self._stop.is_set() or not keep:
                await self.close_relays()
            self._last_pass = time.monotonic()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            if unsent:
                await self._release(unsent)
        return total

    async def _relays_for(self, cfg: Config, conns: int) -> list[Relay]:
        """The relay connections, kept from the last pass unless the config changed: a new
        connection per pass cost a connect, EHLO and QUIT for each post's copies (issue 12)."""
        key = (cfg.server.relay, cfg.server.helo_name, cfg.server.domain, conns)
        if key != self._relay_key:
            await self.close_relays()
            self._relays = [make_relay(cfg) for _ in range(conns)]
            self._relay_key = key
        return self._relays

    async def close_relays(self) -> None:
        relays, self._relays, self._relay_key = self._relays, [], None
        for relay in relays:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(relay.close(), CLOSE_TIMEOUT)

    async def _claim(self, lease: timedelta) -> list[Claimed]:
        def claim(s: Session) -> list[Claimed]:
            now = datetime.now(UTC)
            return outbound.claim_deliveries(s, now, lease, BATCH, self.instance_id)

        return await self.store.write(claim)

    async def _release(self, ids: list[int]) -> None:
        await self.store.write(lambda s: outbound.release(s, ids, self.instance_id))
        log.info("gave back %d claimed copies not yet tried", len(ids))

    async def _sender(
        self,
        cfg: Config,
        relay: Relay,
        work: asyncio.Queue[tuple[Claimed, float] | None],
        down: list[str],
        unsent: list[int],
    ) -> None:
        site = cfg.site
        self._active += 1
        try:
            await self._send_all(site, relay, work, down, unsent)
        finally:
            self._active -= 1
            self._dirty.set()  # the writer need not wait for this sender any more

    async def _send_all(
        self,
        site: Site,
        relay: Relay,
        work: asyncio.Queue[tuple[Claimed, float] | None],
        down: list[str],
        unsent: list[int],
    ) -> None:
        recorded: Awaitable[None] | None = None  # the commit of this sender's last outcome
        ahead: tuple[Claimed, float, Envelope | None] | None = None  # taken from work early
        told = False  # the relay was told ahead's copy (then=) and waits for its message
        ended = False  # the end marker was taken with ahead
        while True:
            if ahead is not None:
                (item, fresh_until, copy), ahead = ahead, None
            elif ended or (next_item := await work.get()) is None:
                break
            else:
                (item, fresh_until), copy = next_item, None
            announced, told = told, False
            if self._stop.is_set() or time.monotonic() > fresh_until:
                if announced:  # the relay waits for its message: hang up, it discards the copy
                    await self._hang_up(relay)
                unsent.append(item.id)  # stop claiming and trying; what is left goes back
                continue
            if down:  # the relay is unreachable: defer the rest of this pass without a try each
                if announced:
                    await self._hang_up(relay)
                self.results.deferred.append((item, down[0]))
                self._dirty.set()
                continue
            try:
                if copy is None:
                    copy = self._copy(site, item, *await self._outbound(item.outbound_id))
                ahead, ended = self._take_next(site, work)
                # The relay awaits `recorded` (the commit of the last copy) before the message,
                # so a crash can resend only the one copy in flight on this connection; where
                # the envelope went ahead (then=, or DATA's 354), the commit overlaps it.
                then = ahead[2] if ahead is not None else None
                told = await relay.send(*copy, item.id, recorded, then=then)
                self.results.sent.append(item.id)
            except RelayUnreachable as exc:
                down.append(str(exc))
                self.results.deferred.append((item, str(exc)))
            except TransientError as exc:
                self.results.deferred.append((item, str(exc)))
            except PermanentError as exc:
                self.results.failed.append((item, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one bad copy must not stop the others
                log.exception("delivery %s failed unexpectedly", item.id)
                self.results.deferred.append((item, f"internal error: {exc}"))
            recorded = self._recording()
        if recorded is not None:
            await recorded

    @staticmethod
    async def _hang_up(relay: Relay) -> None:
        """Close a connection that waits for a copy we will not send now (the relay discards
        it); the next copy on it reconnects."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay.close(), CLOSE_TIMEOUT)

    @staticmethod
    def _copy(site: Site, item: Claimed, list_name: str, raw: bytes) -> Envelope:
        """The member's own copy of a message: VERP sender, List-Unsubscribe with their token."""
        data = add_fields(raw, member_fields(list_name, site, item.token)) if item.token else raw
        return verp_encode(list_name, site.domain, item.recipient), item.recipient, data

    def _take_next(
        self, site: Site, work: asyncio.Queue[tuple[Claimed, float] | None]
    ) -> tuple[tuple[Claimed, float, Envelope | None] | None, bool]:
        """The sender's next copy when it is already queued, built when its message is at hand
        and it is still fresh (a relay that pipelines announces it with this copy's end);
        and whether the end marker came instead (the sender stops after this copy)."""
        if self._stop.is_set() or work.empty():
            return None, False
        next_item = work.get_nowait()
        if next_item is None:
            return None, True
        item, fresh_until = next_item
        load = self._cache.get(item.outbound_id)
        if load is None or not load.done() or load.cancelled() or load.exception() is not None:
            return (item, fresh_until, None), False
        if time.monotonic() > fresh_until:
            return (item, fresh_until, None), False  # the loop gives it back
        try:
            copy = self._copy(site, item, *load.result())
        except Exception:  # noqa: BLE001 - built again in the loop, where its error is its own
            return (item, fresh_until, None), False
        return (item, fresh_until, copy), False

    def _recording(self) -> Awaitable[None]:
        """What to await for the outcomes gathered so far (this sender's last among them)."""
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        self._gathered += 1
        if self._gathered == 1 or self._gathered >= self._active:
            self._dirty.set()  # the first starts the GATHER clock, the last ends the wait
        return asyncio.shield(self._written)

    async def _outbound(self, outbound_id: int) -> tuple[str, bytes]:
        # The cache holds the load itself, so senders missing at once share one read of the body.
        load = self._cache.get(outbound_id)
        if load is None:
            load = asyncio.ensure_future(asyncio.to_thread(self._load_outbound, outbound_id))
            self._remember(outbound_id, load)
        try:
            return await asyncio.shield(load)
        except Exception:
            self._cache.pop(
                outbound_id, None
            )  # a failed load is not remembered; the next copy retries
            raise

    def _remember(self, outbound_id: int, load: asyncio.Future[tuple[str, bytes]]) -> None:
        self._cache[outbound_id] = load
        while len(self._cache) > 32:
            self._cache.popitem(last=False)

    def _load_outbound(self, outbound_id: int) -> tuple[str, bytes]:
        with self.store.reader() as s:
            found = outbound.outbound_raw(s, outbound_id)
        if found is None:
            raise PermanentError(f"outbound message {outbound_id} is missing from the store")
        list_name, raw = found
        return list_name, wire.crlf(raw)  # once per body, not per copy (WireRelay.send)

    async def _write_loop(self) -> None:
        """Group commit: once every sender waits on the batch, or GATHER after the first did,
        write it in one transaction. Senders fall into step, so one commit records a copy per
        connection; each commit was ~0.5 ms of CPU, more than the copy cost to send."""
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            deadline = loop.time() + GATHER
            while self._gathered < self._active and loop.time() < deadline:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        await self._dirty.wait()
                self._dirty.clear()
            await self._flush()

    async def _flush(self) -> None:
        # Swap in the event loop, where the senders append, so no outcome can slip between.
        results, self.results = self.results, Results()
        written, self._written = self._written, None
        self._gathered = 0
        while results:
            try:
                if results.deferred or results.failed:
                    await self.store.write(lambda s: self._write(s, results))
                else:  # the common case, once per relay 250: no Session, no writer queue
                    await outbound.record_sent(self.store, results.sent)
                break
            except Exception:  # noqa: BLE001 - keep the outcomes: a sent copy must be recorded
                log.exception("could not record %d delivery outcomes; retrying", len(results.sent))
                await asyncio.sleep(0.5)
        if written is not None and not written.done():
            written.set_result(None)

    def _write(self, s: Session, results: Results) -> None:
        """Write outcomes back (a writer job): sent in one statement, deferrals with backoff,
        failures reported."""
        cfg = self.config()
        now = datetime.now(UTC)
        # Core statements on the session's connection: the ORM's per-statement work was most of
        # the CPU of a commit after each relay 250 (bench/fanout.py)
        outbound.mark_sent(s.connection(), results.sent, now)
        for item, error in results.deferred:
            if now - item.created_at > timedelta(seconds=cfg.server.retry_seconds):
                outbound.fail(s, item.id, f"gave up after {cfg.server.retry_for}: {error}")
                self._report(s, cfg, item, error, permanent=False)
            else:
                delay = retry_delay(item.attempts, cfg.server.retry_initial_seconds)
                outbound.defer(s, item.id, error, now + delay)
        for item, error in results.failed:
            outbound.fail(s, item.id, error)
            self._report(s, cfg, item, error, permanent=True)
        if results.deferred:
            log.info("deferred %d copies (%s)", len(results.deferred), results.deferred[0][1])

    def _report(self, s: Session, cfg: Config, item: Claimed, error: str, permanent: bool) -> None:
        log.warning(
            "delivery to %s failed%s: %s", item.recipient, "" if permanent else " for good", error
        )
        if self.on_failure is not None:
            self.on_failure(s, cfg, item, error, permanent)
