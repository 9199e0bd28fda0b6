"""`listserv demo`: a self-contained tour: a list, three members, a post and a job-found leave."""

from __future__ import annotations

import asyncio
import smtplib
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from listserv.config import load_config
from listserv.states import MemberStatus
from listserv.store import members

DEMO_CONFIG = """\
[server]
domain = "lists.example.org"
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
database = "sqlite:///var/listserv.db"
relay = "outbox:var/outbox"
sender_auth = "none"  # a closed demo: its mails are unsigned, and From is trusted

[lists.networking]
title = "Tri-County Job Seekers Networking"
description = "Leads, introductions and encouragement for people looking for work."
owners = ["owner@example.org"]
dmarc = "none"
"""

POST = """\
From: Ann Lee <ann@example.com>
To: networking@lists.example.org
Subject: Data analyst openings at the county

Hi all, the county posted three data analyst roles this week. Happy to refer anyone.
"""

JOB_LEAVE = """\
From: Bob Diaz <bob@example.net>
To: networking-leave@lists.example.org
Subject: unsubscribe

Please take me off the list, I got a job at Acme! Thanks for all the help.
"""


async def run_demo(folder: Path) -> list[Path]:
    """Set up the demo in folder, run it, return the .eml files written."""
    from listserv.server import Server

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "listserv.toml"
    if not path.exists():
        path.write_text(DEMO_CONFIG)
    cfg = load_config(path)
    srv = Server(cfg)
    await srv.start()
    try:
        now = datetime.now(UTC)
        with srv.store.session() as s:
            for address in ("ann@example.com", "bob@example.net", "cy@example.org"):
                m = members.upsert_member(
                    s, "networking", address, now, status=MemberStatus.PENDING
                )
                if m.status != MemberStatus.ACTIVE:
                    members.activate(s, m, now, "demo")
        for text, rcpt, sender in (
            (POST, "networking@lists.example.org", "ann@example.com"),
            (JOB_LEAVE, "networking-leave@lists.example.org", "bob@example.net"),
        ):
            await asyncio.to_thread(_send, srv.smtp_port, sender, rcpt, text)
        outbox = cfg.resolve("var/outbox")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(list(outbox.glob("*.eml"))) < 4:
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
    finally:
        await srv.stop()
    return sorted(cfg.resolve("var/outbox").glob("*.eml"))


def _send(port: int, sender: str, rcpt: str, text: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(sender, [rcpt], textwrap.dedent(text).encode())
