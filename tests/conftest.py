"""Fixtures: configs, a store, literal messages, a real aiosmtpd sink and a running server."""

from __future__ import annotations

import asyncio
import itertools
import smtplib
import socket
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from listserv.config import Config, parse_config
from listserv.store import Store, open_store
from tests.pgcluster import pg_cluster  # noqa: F401  (the session's PostgreSQL, for every module)

DOMAIN = "lists.example.org"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config_text(
    *,
    relay: str = "outbox:var/outbox",
    listen: str = "127.0.0.1:0",
    http: str = "127.0.0.1:0",
    database: str = "sqlite:///var/listserv.db",
    server_extra: str = "",
    list_extra: str = "",
    name: str = "networking",
    dmarc: str = "none",
    sender_auth: str = "none",
) -> str:
    return (
        textwrap.dedent(f"""\
        [server]
        domain = "{DOMAIN}"
        listen = "{listen}"
        http_listen = "{http}"
        base_url = "http://127.0.0.1:8080"
        database = "{database}"
        relay = "{relay}"
        retry_initial = "1s"
        sender_auth = "{sender_auth}"
        """)
        + server_extra
        + textwrap.dedent(f"""
        [lists.{name}]
        title = "Tri-County Job Seekers Networking"
        description = "Leads and encouragement."
        owners = ["owner@example.org"]
        subject_prefix = "[networking] "
        dmarc = "{dmarc}"
        """)
        + list_extra
    )


def make_config(folder: Path, **kw: str) -> Config:
    path = folder / "listserv.toml"
    path.write_text(config_text(**kw))
    return parse_config(path.read_text(), path)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def store(cfg: Config) -> Iterator[Store]:
    s = open_store(cfg.database_url)
    yield s
    s.dispose()


def make_message(text: str) -> bytes:
    """A message from literal text (like Mailman's mfs): dedented, CRLF line ends."""
    return (
        textwrap.dedent(text)
        .lstrip("\n")
        .replace("\r\n", "\n")
        .replace("\n", "\r\n")
        .encode("utf-8")
    )


def parse_bytes(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


@dataclass
class Received:
    mail_from: str
    rcpt: str
    raw: bytes

    @property
    def msg(self) -> EmailMessage:
        return parse_bytes(self.raw)


@dataclass
class Sink:
    """A real aiosmtpd server on loopback that records every copy, one per recipient."""

    port: int = 0
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    answer: str = "250 OK"  # what DATA answers; tests set '451 ...' or '550 ...'
    controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if not self.answer.startswith("250"):
            return self.answer
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append(Received(envelope.mail_from, rcpt, envelope.original_content))
        return "250 OK"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.rcpt == address]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink(port=free_port())
    s.controller = Controller(s, hostname="127.0.0.1", port=s.port)
    s.controller.start()
    yield s
    s.controller.stop()


def send(port: int, mail_from: str, rcpts: list[str] | str, raw: bytes) -> dict:
    """Send one message with smtplib (blocking); returns refused recipients."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(mail_from, [rcpts] if isinstance(rcpts, str) else rcpts, raw)


async def asend(port: int, mail_from: str, rcpts: list[str] | str, raw: bytes) -> dict:
    return await asyncio.to_thread(send, port, mail_from, rcpts, raw)


async def wait_for(
    check: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> object:
    """Poll check() until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class FakeResolver:
    """DMARC TXT answers from a dict; no network."""

    def __init__(self, records: dict[str, str] | None = None) -> None:
        self.records = records or {}

    def __call__(self, name: str) -> tuple[list[str], int]:
        import dns.resolver

        if name not in self.records:
            raise dns.resolver.NXDOMAIN()
        return [self.records[name]], 3600


@pytest.fixture
async def server_factory(tmp_path: Path, sink: Sink) -> AsyncIterator[Callable]:
    """Start real listserv Servers in this event loop, relaying to the sink; stopped at teardown."""
    from listserv.dmarc import DmarcPolicies
    from listserv.server import Server

    started: list[Server] = []

    async def start(
        list_extra: str = "",
        server_extra: str = "",
        records: dict | None = None,
        folder: Path | None = None,
        dmarc: str = "none",
        sender_auth: str = "none",
        dkim_txt: Callable | None = None,
    ) -> Server:
        c = make_config(
            folder or tmp_path,
            relay=f"smtp://127.0.0.1:{sink.port}",
            list_extra=list_extra,
            server_extra=server_extra,
            dmarc=dmarc,
            sender_auth=sender_auth,
        )
        # No test asks the real DNS for DKIM keys: a lookup finds none unless dkim_txt is given.
        srv = Server(
            c, dmarc=DmarcPolicies(FakeResolver(records)), dkim_txt=dkim_txt or (lambda name: None)
        )
        await srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if not srv.stop_event.is_set():
            await srv.stop()


@pytest.fixture
async def server(server_factory: Callable) -> object:
    return await server_factory()


_message_ids = itertools.count(1)


async def send_to_list(srv, sender: str, to: str, subject: str, body: str = "") -> None:  # type: ignore[no-untyped-def]
    """Mail from sender to one of the list's addresses, built from literal text."""
    raw = make_message(
        f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
        f"Message-ID: <test-{next(_message_ids)}@example.com>\n\n{body}\n"
    )
    await asend(srv.smtp_port, sender, to, raw)


async def mails_to(sink: Sink, address: str, count: int = 1) -> list[EmailMessage]:
    """Wait until address has received count mails; returns them all."""
    await wait_for(lambda: len(sink.to(address)) >= count, what=f"{count} mail(s) to {address}")
    return [m.msg for m in sink.to(address)]


async def settled(srv) -> None:  # type: ignore[no-untyped-def]
    """Wait until every inbound message is handled and every queued copy is sent."""
    from sqlmodel import select

    from listserv.store.tables import Delivery, Inbound

    def idle() -> bool:
        with srv.store.session() as s:
            busy = s.exec(select(Inbound).where(Inbound.state == "new")).first()
            queued = s.exec(select(Delivery).where(Delivery.state.in_(("queued", "sending"))))
            return busy is None and queued.first() is None

    await wait_for(idle, what="inbound handled and deliveries sent")


def confirm_token(msg: EmailMessage) -> str:
    """The token in a mail's Reply-To: networking-confirm+TOKEN@lists.example.org."""
    import re

    m = re.fullmatch(rf"networking-confirm\+([0-9a-f]+)@{re.escape(DOMAIN)}", str(msg["Reply-To"]))
    assert m, f"Reply-To is not a confirm address: {msg['Reply-To']!r}"
    return m.group(1)


async def base_url(srv) -> str:  # type: ignore[no-untyped-def]
    """The running server's HTTP address (uvicorn binds an ephemeral port)."""
    await wait_for(lambda: srv.http.started, what="http server started")
    return f"http://127.0.0.1:{srv.http.servers[0].sockets[0].getsockname()[1]}"


def member(srv, address: str):  # type: ignore[no-untyped-def]
    """The member's row on the test list, or None."""
    from listserv.store import members

    with srv.store.session() as s:
        return members.get_member(s, "networking", address)


def add_members(srv, *addresses: str, delivery: str = "regular") -> None:  # type: ignore[no-untyped-def]
    """Active members straight into the store."""
    from listserv.store import members

    with srv.store.session() as s:
        for address in addresses:
            m = members.upsert_member(
                s, "networking", address, datetime.now(UTC), status="pending", delivery=delivery
            )
            members.activate(s, m, datetime.now(UTC), "test")


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print the figures tests measured (the classifier's precision and recall, the fuzz outcome)."""
    import sys

    for name in ("tests.unit.test_retention", "tests.e2e.test_fuzz"):
        for line in getattr(sys.modules.get(name), "FIGURES", []):
            terminalreporter.write_line(line)
