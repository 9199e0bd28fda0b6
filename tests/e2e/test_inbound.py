"""Intake: limits before the 250, nothing accepted is lost (retry, park, tell, retry by hand)."""

from __future__ import annotations

import json
import smtplib
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from listserv import dispatch
from listserv.cli import app
from listserv.store import inbound
from listserv.store.tables import Inbound
from tests.conftest import add_members, asend, mails_to, make_message, settled

LIST = "networking@lists.example.org"


def post(subject: str = "Hello", extra: str = "", body: str = "Hi all.") -> bytes:
    return make_message(
        f"From: ann@example.com\nTo: {LIST}\nSubject: {subject}\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.com>\n{extra}\n{body}\n"
    )


async def refused(srv, raw: bytes) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(smtplib.SMTPResponseException) as caught:
        await asend(srv.smtp_port, "ann@example.com", LIST, raw)
    return caught.value.smtp_code, caught.value.smtp_error.decode()


async def test_a_header_over_the_limit_is_refused_before_the_250(server_factory):
    """A folded header bigger than max_header_bytes gets 552 naming the limit; nothing is kept."""
    srv = await server_factory(server_extra="max_header_bytes = 4096\n")
    folded = "X-Big: start\n" + " folded line of a long header\n" * 500
    code, text = await refused(srv, post("big", folded))
    assert code == 552 and "header too big" in text
    with srv.store.reader() as s:
        assert inbound.listing(s) == []


async def test_too_many_header_fields_are_refused(server_factory):
    """More header fields than max_header_fields: 552."""
    srv = await server_factory(server_extra="max_header_fields = 20\n")
    code, text = await refused(srv, post("many", "X-Field: 1\n" * 30))
    assert code == 552 and "Too many header fields" in text


async def test_mime_nested_too_deep_is_refused(server_factory):
    """A multipart nested deeper than max_mime_depth: 552, before the parser could recurse."""
    srv = await server_factory()
    depth = 1000
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth)
    )
    tail = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    raw = make_message(
        f"From: ann@example.com\nTo: {LIST}\nSubject: deep\nMIME-Version: 1.0\n{head}"
        f"Content-Type: text/plain\n\nhi\n{tail}"
    )
    code, text = await refused(srv, raw)
    assert code == 552 and "nested too deep" in text


async def test_a_line_over_the_limit_is_refused(server_factory):
    """A line longer than max_line_bytes gets aiosmtpd's 500 Line too long."""
    srv = await server_factory()
    code, text = await refused(srv, post("long", body="x" * 5000))
    assert code == 500 and "Line too long" in text


async def test_a_message_that_keeps_failing_is_parked_told_and_retried_by_hand(
    server_factory, sink, monkeypatch
):
    """A failure is retried, then parked with its reason; owners are told; `inbound retry` runs it."""
    srv = await server_factory(server_extra='inbound_attempts = 2\ninbound_retry = "1s"\n')
    add_members(srv, "ann@example.com", "bob@example.com")
    real = dispatch.handle_inbound

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(dispatch, "handle_inbound", broken)
    await asend(srv.smtp_port, "ann@example.com", LIST, post("Parked post"))
    [note] = await mails_to(sink, "owner@example.org")
    assert "could not be handled" in note["Subject"]
    body = note.get_content()
    assert "RecursionError" in body and "listserv inbound retry" in body

    runner = CliRunner()
    listed = runner.invoke(app, ["inbound", "--failed", "--json", "--config", str(srv.cfg.path)])
    assert listed.exit_code == 0, listed.output
    [item] = json.loads(listed.output)
    assert item["state"] == "parked" and item["attempts"] == 2
    assert item["subject"] == "Parked post" and "RecursionError" in item["error"]

    monkeypatch.setattr(dispatch, "handle_inbound", real)
    again = runner.invoke(app, ["inbound", "retry", str(item["id"]), "--config", str(srv.cfg.path)])
    assert again.exit_code == 0, again.output
    srv.inbound.wake()
    [copy] = await mails_to(sink, "bob@example.com")
    assert copy["Subject"] == "[networking] Parked post"
    none_left = runner.invoke(app, ["inbound", "--failed", "--config", str(srv.cfg.path)])
    assert "No parked messages." in none_left.output


def test_inbound_retry_of_an_unknown_id_says_what_to_do(tmp_path):
    """`listserv inbound retry 99` with no such message: exit 1 and a pointer to --failed."""
    from tests.conftest import make_config

    cfg = make_config(tmp_path)
    result = CliRunner().invoke(app, ["inbound", "retry", "99", "--config", str(cfg.path)])
    assert result.exit_code == 1
    assert "inbound --failed" in result.output


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


async def test_a_restart_takes_back_its_own_dead_claims_at_once(server_factory, sink, tmp_path):
    """A message claimed by a killed process of this host is handled at start, not after the
    lease; one claimed by an instance elsewhere still waits for its lease."""
    srv = await server_factory()
    add_members(srv, "ann@example.com", "bob@example.com")
    await srv.stop()
    later = datetime.now(UTC) + timedelta(minutes=5)
    with srv.store.session() as s:
        for subject, owner in (
            ("Killed mid-post", f"abc123@{socket.gethostname()}:{dead_pid()}"),
            ("Other instance", "def456@elsewhere.example:123"),
        ):
            [row_id] = inbound.save_many(
                s, [("ann@example.com", [LIST], post(subject))], datetime.now(UTC)
            )
            row = s.get(Inbound, row_id)
            assert row is not None
            row.claimed_by, row.claimed_until = owner, later
    srv2 = await server_factory(folder=tmp_path)
    [copy] = await mails_to(sink, "bob@example.com")
    assert copy["Subject"] == "[networking] Killed mid-post"
    with srv2.store.reader() as s:
        [waiting] = inbound.listing(s)
    assert waiting.claimed_by.startswith("def456@elsewhere.example")


async def test_accepted_posts_from_concurrent_clients_are_each_delivered_once(server, sink):
    """Concurrent sessions share group commits; every post arrives exactly once."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import send

    add_members(server, "ann@example.com", "bob@example.com")
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(20) as clients:  # not the loop's default pool, which the server uses
        await asyncio.gather(
            *(
                loop.run_in_executor(
                    clients, send, server.smtp_port, "ann@example.com", LIST, post(f"c{i}")
                )
                for i in range(20)
            )
        )
    await settled(server)
    subjects = sorted(m.msg["Subject"] for m in sink.to("bob@example.com"))
    assert subjects == sorted(f"[networking] c{i}" for i in range(20))


async def test_a_message_that_keeps_killing_the_process_is_parked_not_looped(
    server_factory, sink, tmp_path
):
    """Each take-back after a dead process counts as a try; past inbound_attempts it is parked."""
    srv = await server_factory(server_extra="inbound_attempts = 2\n")
    await srv.stop()
    with srv.store.session() as s:
        [row_id] = inbound.save_many(
            s, [("ann@example.com", [LIST], post("Deadly"))], datetime.now(UTC)
        )
        row = s.get(Inbound, row_id)
        assert row is not None
        row.attempts = 1
        row.claimed_by = f"abc123@{socket.gethostname()}:{dead_pid()}"
        row.claimed_until = datetime.now(UTC) + timedelta(minutes=5)
    await server_factory(server_extra="inbound_attempts = 2\n", folder=tmp_path)
    [note] = await mails_to(sink, "owner@example.org")
    assert "interrupted" in note.get_content()
    with srv.store.reader() as s:
        [parked] = inbound.listing(s, failed_only=True)
    assert parked.attempts == 2 and parked.error.startswith("interrupted")
