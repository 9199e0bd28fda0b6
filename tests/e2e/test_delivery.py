"""Delivery: deferral and retry while the relay is down, permanent failures, kill -9 durability."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select
from typer.testing import CliRunner

from listserv.cli import app
from listserv.delivery import RETRY_CAP, retry_delay
from listserv.store.tables import Delivery, Member
from tests.conftest import (
    DOMAIN,
    add_members,
    asend,
    config_text,
    free_port,
    make_message,
    send,
    wait_for,
)

LIST = f"networking@{DOMAIN}"
MEMBERS = ("ann@example.com", "bob@example.net", "cy@example.org")


def post(subject: str, msgid: str, sender: str = "ann@example.com") -> bytes:
    return make_message(f"""
        From: {sender}
        To: {LIST}
        Subject: {subject}
        Message-ID: <{msgid}@example.com>

        Body of {msgid}.
        """)


def cli(config: Path | str, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result


def queue_json(config: Path | str) -> list[dict]:
    return json.loads(cli(config, "queue", "--json").stdout)


def copies(sink, subject: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """How many copies of the post with subject each recipient got."""
    counts: dict[str, int] = {}
    with sink.lock:
        for m in sink.messages:
            if subject in str(m.msg["Subject"] or ""):
                counts[m.rcpt] = counts.get(m.rcpt, 0) + 1
    return counts


def test_retry_delay_doubles_from_the_initial_delay_up_to_a_cap():
    """retry_delay: initial, 2x, 4x, ... and never more than two hours."""
    assert retry_delay(1, 30) == timedelta(seconds=30)
    assert retry_delay(2, 30) == timedelta(seconds=60)
    assert retry_delay(3, 30) == timedelta(seconds=120)
    assert retry_delay(0, 1) == timedelta(seconds=1), "attempt 0 waits the initial delay too"
    assert retry_delay(40, 30) == RETRY_CAP == timedelta(hours=2)
    delays = [retry_delay(n, 1) for n in range(1, 30)]
    assert delays == sorted(delays)


async def test_relay_saying_451_defers_copies_then_each_member_gets_exactly_one(server, sink):
    """While the relay answers 451, copies wait in the queue with the error; once it recovers, one copy each."""
    add_members(server, *MEMBERS)
    sink.answer = "451 4.3.0 try later"
    await asend(server.smtp_port, "ann@example.com", LIST, post("Deferred post", "defer-1"))

    def deferred() -> list[dict]:
        rows = [r for r in queue_json(server.cfg.path) if r["recipient"] in MEMBERS]
        return rows if len(rows) == 3 and all("451" in r["last_error"] for r in rows) else []

    rows = await wait_for(deferred, what="three deferred copies in `listserv queue`")
    assert all(r["state"] == "queued" and r["attempts"] >= 1 for r in rows)  # type: ignore[union-attr]
    assert sink.messages == []

    sink.answer = "250 OK"
    await wait_for(
        lambda: len(copies(sink, "Deferred post")) == 3, timeout=15, what="delivery after recovery"
    )
    await asyncio.sleep(0.5)
    assert copies(sink, "Deferred post") == {m: 1 for m in MEMBERS}
    assert [r for r in queue_json(server.cfg.path) if r["recipient"] in MEMBERS] == []


async def test_relay_down_then_restarted_on_the_same_port_resumes_delivery(server, sink):
    """With the relay's port closed, copies are deferred; when it listens again every member gets one."""
    add_members(server, *MEMBERS)
    assert sink.controller is not None
    sink.controller.stop()
    try:
        await asend(server.smtp_port, "ann@example.com", LIST, post("Relay outage", "outage-1"))

        def deferred() -> bool:
            rows = [r for r in queue_json(server.cfg.path) if r["recipient"] in MEMBERS]
            return len(rows) == 3 and all(r["last_error"] for r in rows)

        await wait_for(deferred, what="copies deferred while the relay is down")
    finally:
        sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
        sink.controller.start()
    await wait_for(
        lambda: len(copies(sink, "Relay outage")) == 3, timeout=15, what="delivery after restart"
    )
    await asyncio.sleep(0.5)
    assert copies(sink, "Relay outage") == {m: 1 for m in MEMBERS}


async def test_relay_5xx_fails_the_copy_and_raises_the_bounce_score(server, sink):
    """A 550 for one recipient marks that copy 'failed' (no retry) and adds to the member's bounce score."""
    add_members(server, *MEMBERS)
    refused = "bob@example.net"

    async def handle_RCPT(srv, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if address == refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    sink.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
    await asend(server.smtp_port, "ann@example.com", LIST, post("Refused copy", "refuse-1"))

    def failed_row() -> Delivery | None:
        with server.store.session() as s:
            return s.exec(
                select(Delivery).where(Delivery.recipient == refused, Delivery.state == "failed")
            ).first()

    row = await wait_for(failed_row, what="the refused copy marked failed")
    assert "550" in row.last_error and row.attempts == 1  # type: ignore[union-attr]
    await wait_for(lambda: len(copies(sink, "Refused copy")) == 2, what="the other two copies")
    with server.store.session() as s:
        score = s.exec(select(Member.bounce_score).where(Member.address == refused)).one()
    assert score >= 1
    listed = json.loads(cli(server.cfg.path, "members", "list", "networking", "--json").stdout)
    assert {m["address"]: m["bounce_score"] for m in listed}[refused] >= 1
    await asyncio.sleep(1.5)  # longer than the first retry delay: a failed copy is never retried
    assert refused not in copies(sink, "Refused copy")
    with server.store.session() as s:
        assert s.get(Delivery, row.id).attempts == 1  # type: ignore[union-attr]


# -- kill -9 durability ----------------------------------------------------------------------


def utc(iso: str) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones)."""
    value = datetime.fromisoformat(iso)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    return free_port()


def write_config(folder: Path, relay_port: int, smtp_port: int, http_port: int) -> Path:
    path = folder / "listserv.toml"
    path.write_text(
        config_text(
            relay=f"smtp://127.0.0.1:{relay_port}",
            listen=f"127.0.0.1:{smtp_port}",
            http=f"127.0.0.1:{http_port}",
        )
    )
    return path


def start_server(config: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "listserv", "serve", "--config", str(config)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
        )


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"listserv exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"listserv did not listen on {port} within {timeout}s:\n{log.read_text()}")


def poll(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_kill_9_after_250_loses_nothing_and_sends_nothing_twice(tmp_path, sink):
    """A post accepted with 250, then `kill -9` before delivery: after a restart each member gets one copy."""
    smtp_port, http_port = free_port(), free_port()
    config = write_config(tmp_path, closed_port(), smtp_port, http_port)
    members = [f"m{i}@example.org" for i in range(5)]
    cli(config, "members", "add", "networking", *members, "--no-welcome")
    log = tmp_path / "serve.log"

    proc = start_server(config, log)
    try:
        wait_listening(smtp_port, proc, log)
        refused = send(
            smtp_port, "m0@example.org", LIST, post("Survives kill -9", "kill-1", "m0@example.org")
        )
        assert refused == {}

        def all_deferred() -> bool:
            # Kill only when no retry is imminent, so no copy is left claimed (leased) by the dead process.
            soon = datetime.now(UTC) + timedelta(seconds=0.5)
            rows = [r for r in queue_json(config) if r["recipient"] in members]
            return len(rows) == 5 and all(
                r["state"] == "queued" and r["last_error"] and utc(r["next_attempt_at"]) > soon
                for r in rows
            )

        poll(all_deferred, 20, "five copies deferred (relay unreachable)")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert sink.messages == []

    write_config(tmp_path, sink.port, smtp_port, http_port)
    proc = start_server(config, log)
    try:
        wait_listening(smtp_port, proc, log)
        poll(
            lambda: len(copies(sink, "Survives kill -9")) == 5, 20, "five copies after the restart"
        )
        time.sleep(1.0)
        assert copies(sink, "Survives kill -9") == {m: 1 for m in members}
        assert [r for r in queue_json(config) if r["recipient"] in members] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, log.read_text()[-3000:]


class _DownRelay:
    """A relay that can never be reached; counts how often it was tried."""

    tries = 0

    async def send(
        self, sender: str, rcpt: str, data: bytes, tag: int, ready=None, then=None
    ) -> None:  # type: ignore[no-untyped-def]
        from listserv.delivery import RelayUnreachable

        type(self).tries += 1
        raise RelayUnreachable("relay 127.0.0.1:1 unreachable: refused")

    async def close(self) -> None:
        return None


async def test_unreachable_relay_defers_a_whole_pass_after_one_try_per_connection(
    cfg, store, monkeypatch
):
    """With the relay down, a pass defers every due copy without dialling the relay for each."""
    import listserv.delivery as delivery
    from listserv.delivery import Deliverer
    from listserv.store import members
    from listserv.store import outbound as queue

    now = datetime.now(UTC)
    with store.session() as s:
        for i in range(200):
            m = members.upsert_member(s, "networking", f"m{i}@example.org", now, status="pending")
            members.activate(s, m, now, "test")
        out = queue.add_outbound(s, "networking", "post", b"Subject: hi\r\n\r\nbody\r\n", now)
        queue.queue_to_members(s, out.id, "networking", ("regular",), now)
    _DownRelay.tries = 0
    monkeypatch.setattr(delivery, "make_relay", lambda c: _DownRelay())
    handled = await Deliverer(store, lambda: cfg).deliver_due()
    assert handled == 200
    assert _DownRelay.tries <= cfg.server.delivery_connections
    with store.session() as s:
        rows = list(s.exec(select(Delivery)))
    assert {r.state for r in rows} == {"queued"}
    assert all("unreachable" in r.last_error and r.next_attempt_at > now for r in rows)


async def test_relay_login_failure_is_temporary_not_a_bounce():
    """A relay refusing our login (535) defers the copy; it is not the recipient's failure."""
    import aiosmtplib
    import pytest

    from listserv.delivery import RelayUnreachable, SmtpRelay

    relay = SmtpRelay("smtp://user:wrong@127.0.0.1:1")

    async def refuse_login() -> aiosmtplib.SMTP:
        raise aiosmtplib.SMTPAuthenticationError(535, "5.7.8 authentication failed")

    relay._connect = refuse_login  # type: ignore[method-assign]
    with pytest.raises(RelayUnreachable):
        await relay.send("b@x.org", "ann@example.com", b"Subject: x\r\n\r\ny\r\n", 1)


async def test_a_stored_body_with_bare_line_ends_reaches_the_relay_with_crlf_only(tmp_path, sink):
    """Delivery normalises each body's line ends once, as it loads it (the wire client no longer
    checks every copy): a body stored with bare LF and CR lines arrives with CRLF only, its
    leading dot intact, and the member's List-Unsubscribe fields in the header."""
    from listserv.delivery import Deliverer
    from listserv.store import members, open_store
    from listserv.store import outbound as queue
    from tests.conftest import make_config

    cfg = make_config(tmp_path, relay=f"smtp://127.0.0.1:{sink.port}")
    store = open_store(cfg.database_url)
    try:
        now = datetime.now(UTC)
        with store.session() as s:
            m = members.upsert_member(s, "networking", "ann@example.org", now, status="pending")
            members.activate(s, m, now, "test")
            raw = b"Subject: hi\nX-Old: mac\r\n\nline one\n.dot line\rlast\n"
            out = queue.add_outbound(s, "networking", "post", raw, now)
            queue.queue_to_members(s, out.id, "networking", ("regular",), now)
        deliverer = Deliverer(store, lambda: cfg)
        assert await deliverer.deliver_due() == 1
        await deliverer.close_relays()
        [copy] = sink.to("ann@example.org")
        content = copy.raw
        assert content.count(b"\n") == content.count(b"\r\n") == content.count(b"\r")
        head, body = content.split(b"\r\n\r\n", 1)
        assert b"List-Unsubscribe: <" in head and head.startswith(b"Subject: hi\r\nX-Old: mac")
        assert body == b"line one\r\n.dot line\r\nlast\r\n"
    finally:
        store.dispose()


@contextlib.asynccontextmanager
async def one_post_through(
    tmp_path: Path, fake: Any, count: int, server_extra: str = ""
) -> AsyncIterator[tuple[Any, Any, dict[str, str]]]:
    """The fake relay (tests.e2e.test_wire.ChunkingRelay) on loopback, a store with count active
    members m0..m{count-1}@example.org and one post queued to them: (store, a Deliverer
    relaying to the fake, each member's token). Closes the relay and the store after."""
    from listserv.delivery import Deliverer
    from listserv.store import members, open_store
    from listserv.store import outbound as queue
    from tests.conftest import make_config

    relay = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = relay.sockets[0].getsockname()[1]
    cfg = make_config(tmp_path, relay=f"smtp://127.0.0.1:{port}", server_extra=server_extra)
    store = open_store(cfg.database_url)
    try:
        now = datetime.now(UTC)
        tokens = {}
        with store.session() as s:
            for i in range(count):
                m = members.upsert_member(
                    s, "networking", f"m{i}@example.org", now, status="pending"
                )
                members.activate(s, m, now, "test")
                tokens[m.address] = m.token
            out = queue.add_outbound(s, "networking", "post", b"Subject: hi\r\n\r\nbody\r\n", now)
            queue.queue_to_members(s, out.id, "networking", ("regular",), now)
        deliverer = Deliverer(store, lambda: cfg)
        try:
            yield store, deliverer, tokens
        finally:
            await deliverer.close_relays()
    finally:
        store.dispose()
        relay.close()


def rows_by_recipient(store: Any) -> dict[str, Delivery]:
    with store.reader() as s:
        return {r.recipient: r for r in s.exec(select(Delivery))}


async def test_a_pipelining_relay_gets_each_member_their_own_copy_once(tmp_path):
    """Against a relay with PIPELINING and no CHUNKING (smtp-sink, many MTAs) each copy's
    envelope goes out with the previous copy's end. Every member still gets exactly one copy,
    under their own VERP sender and with their own token in List-Unsubscribe, and every row
    is marked sent."""
    import re

    from tests.e2e.test_wire import ChunkingRelay

    fake = ChunkingRelay(chunking=False)
    async with one_post_through(tmp_path, fake, 300) as (store, deliverer, tokens):
        assert await deliverer.deliver_due() == 300
        rows = rows_by_recipient(store)
    got = {rcpt: (sender, data) for sender, rcpt, data in fake.messages}
    assert len(fake.messages) == len(got) == 300 and fake.discarded == 0
    for address, (sender, data) in got.items():
        local, _, host = address.partition("@")
        assert sender == f"networking-bounces+{local}={host}@lists.example.org"
        assert re.findall(rb"networking-leave\+([^@]+)@", data) == [tokens[address].encode()]
    assert fake.early > 200  # most envelopes went out with the message before them
    assert {r.state for r in rows.values()} == {"sent"}


async def test_a_copy_that_cannot_be_built_when_taken_early_fails_alone(tmp_path, monkeypatch):
    """Building the next copy early raises: the copy being sent still goes out, the next one
    is tried on its own and deferred with its own error, and no copy is left claimed."""
    from listserv.delivery import Deliverer
    from tests.e2e.test_wire import ChunkingRelay

    real = Deliverer._copy

    def copy(site, item, *loaded):  # type: ignore[no-untyped-def]
        if item.recipient == "m3@example.org":
            raise ValueError("cannot build m3")
        return real(site, item, *loaded)

    monkeypatch.setattr(Deliverer, "_copy", staticmethod(copy))
    fake = ChunkingRelay(chunking=False)
    async with one_post_through(tmp_path, fake, 6, "delivery_connections = 1\n") as (
        store,
        deliverer,
        _,
    ):
        await deliverer.deliver_due()
        rows = rows_by_recipient(store)
    assert sorted(rcpt for _, rcpt, _ in fake.messages) == [
        f"m{i}@example.org" for i in (0, 1, 2, 4, 5)
    ]
    assert rows["m3@example.org"].state == "queued"
    assert "cannot build m3" in rows["m3@example.org"].last_error
    assert {r.state for a, r in rows.items() if a != "m3@example.org"} == {"sent"}


@pytest.mark.parametrize("chunking", [True, False], ids=["chunking", "pipelining"])
async def test_a_copy_taken_early_that_goes_stale_is_given_back_not_sent(tmp_path, chunking):
    """The next copy is taken from the queue while this one is out. When the relay is so slow
    that it passes half its claim's lease meanwhile, it is given back (another instance may
    take it once the lease ends), not sent: announced or not."""
    from tests.e2e.test_wire import ChunkingRelay

    fake = ChunkingRelay(chunking=chunking)
    fake.slow_first = 1.5  # past half the 2 s lease
    extra = 'delivery_connections = 1\nclaim_lease = "2s"\n'
    async with one_post_through(tmp_path, fake, 3, extra) as (store, deliverer, _):
        await deliverer.deliver_due()
        rows = rows_by_recipient(store)
    assert [rcpt for _, rcpt, _ in fake.messages] == ["m0@example.org"]
    assert rows["m0@example.org"].state == "sent"
    assert {rows[f"m{i}@example.org"].state for i in (1, 2)} == {"queued"}
    assert fake.discarded == (0 if chunking else 1)  # the announced copy, hung up on
