"""Fuzz: messy real-world and mutated mail through a running server; nothing accepted is lost."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import func, select

from listserv.store.tables import Inbound, Post
from tests import fuzz
from tests.conftest import add_members, wait_for

DOMAIN = "lists.example.org"
ADDRESSES = ("networking", "networking-request", "networking", "networking-bounces")
FIGURES: list[str] = []


def send_all(port: int, items: list[tuple[str, bytes]]) -> tuple[int, Counter]:
    """Send every item over reused connections; (accepted, refusals by code)."""
    accepted, refused = 0, Counter()
    client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    for i, (_name, raw) in enumerate(items):
        rcpt = f"{ADDRESSES[i % len(ADDRESSES)]}@{DOMAIN}"
        try:
            client.sendmail("fuzz@example.com", [rcpt], raw)
            accepted += 1
        except smtplib.SMTPResponseException as exc:
            refused[exc.smtp_code] += 1
            client.close()  # after a refused DATA, start clean
            client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    client.quit()
    return accepted, refused


async def test_every_accepted_fuzz_message_is_handled_and_none_is_lost(
    server_factory, sink, caplog
):
    """Each accepted message ends handled (delivered, held, answered) or parked with a reason;
    none is lost and no traceback ends a message's handling."""
    srv = await server_factory(server_extra='inbound_attempts = 2\ninbound_retry = "1s"\n')
    add_members(srv, "member0@example.com", "a@example.com")
    items = fuzz.corpus(only_every=4)
    caplog.set_level(logging.ERROR, logger="listserv")
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as client:
        accepted, refused = await loop.run_in_executor(client, send_all, srv.smtp_port, items)

    def unfinished() -> int:
        with srv.store.reader() as s:
            return s.exec(select(func.count()).where(Inbound.state == "new")).one()

    await wait_for(lambda: unfinished() == 0, timeout=60, what="every message handled")
    with srv.store.reader() as s:
        states = Counter(s.exec(select(Inbound.state)).all())
        parked = s.exec(select(Inbound.id, Inbound.error).where(Inbound.state == "failed")).all()
        posts = Counter(s.exec(select(Post.status)).all())
    tracebacks = [r for r in caplog.records if r.name == "listserv.inbound"]
    lost = accepted - states["done"] - states["failed"]
    FIGURES.append(
        f"fuzz: {len(items)} messages, {accepted} accepted, refused {dict(refused)}; "
        f"{lost} lost, {len(tracebacks)} tracebacks that end a message's handling, "
        f"{len(parked)} parked; posts {dict(posts)}"
    )
    assert lost == 0
    assert all(error for _id, error in parked)
    assert [r.getMessage() for r in tracebacks] == []
    assert parked == []
