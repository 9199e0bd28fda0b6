"""Exactly once as far as SMTP allows (issue 10): kill -9 and SIGTERM during a real fan-out."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import insert

from listserv.config import load_config
from listserv.store import open_store, outbound
from listserv.store.tables import Member
from tests.conftest import Sink, free_port, send
from tests.e2e.test_delivery import LIST, poll, post, start_server, wait_listening, write_config

CONNECTIONS = 4  # the default [server] delivery_connections: at most this many copies in flight


class SlowSink(Sink):
    """A sink that takes `delay` seconds per copy, so a fan-out lasts long enough to interrupt."""

    delay: float = 0.0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def start_sink(delay: float) -> SlowSink:
    sink = SlowSink(port=free_port())
    sink.delay = delay
    sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    sink.controller.start()
    return sink


def insert_members(config: Path, n: int) -> list[str]:
    """n active regular members straight into the server's database, in one statement."""
    url = load_config(config).database_url
    store = open_store(url)
    now = datetime.now(UTC)
    addresses = [f"m{i}@example.org" for i in range(n)]
    rows = [
        dict(
            list_name="networking",
            address=a,
            name="",
            status="active",
            delivery="regular",
            token=secrets.token_hex(16),
            created_at=now,
            joined_at=now,
            left_reason="",
            bounce_score=0.0,
            probes_sent=0,
        )
        for a in addresses
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(Member.__table__), rows)
    store.dispose()
    return addresses


def queue_states(config: Path) -> Counter[str]:
    store = open_store(load_config(config).database_url)
    try:
        with store.session() as s:
            return Counter(outbound.counts_by_state(s))
    finally:
        store.dispose()


def received(sink: Sink, subject: str) -> Counter[str]:
    with sink.lock:
        return Counter(m.rcpt for m in sink.messages if subject.encode() in m.raw)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_kill_9_mid_fan_out_loses_nothing_and_resends_only_copies_in_flight(tmp_path):
    """kill -9 while 400 copies go out: after a restart every member has a copy, at most one
    per connection twice, and the dead process's claims are taken back without a lease wait."""
    sink = start_sink(delay=0.005)
    smtp_port, http_port = free_port(), free_port()
    config = write_config(tmp_path, sink.port, smtp_port, http_port)
    members = insert_members(config, 400)
    log = tmp_path / "serve.log"
    proc = start_server(config, log)
    try:
        wait_listening(smtp_port, proc, log)
        assert send(smtp_port, members[0], LIST, post("Mid fan-out", "mid-1", members[0])) == {}
        poll(lambda: len(received(sink, "Mid fan-out")) >= 100, 30, "the fan-out under way")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        before = received(sink, "Mid fan-out")
        assert 0 < len(before) < len(members), "killed in the middle of the fan-out"

        # The lease is the default 2 minutes: only the take-back at start lets this finish quickly.
        proc = start_server(config, log)
        wait_listening(smtp_port, proc, log)
        poll(lambda: len(received(sink, "Mid fan-out")) == len(members), 30, "every member")
        poll(lambda: queue_states(config) == {"sent": len(members)}, 10, "every row sent")
        counts = received(sink, "Mid fan-out")
        twice = [m for m, n in counts.items() if n > 1]
        assert max(counts.values()) <= 2
        assert len(twice) <= CONNECTIONS, f"{len(twice)} members got two copies: {twice}"
    finally:
        stop(proc)
        assert sink.controller is not None
        sink.controller.stop()
    assert proc.returncode == 0, log.read_text()[-3000:]


def test_sigterm_mid_fan_out_exits_promptly_leaving_the_rest_queued(tmp_path):
    """SIGTERM during a slow fan-out: the server exits 0 within 10 s, the untried copies stay
    queued (not leased), and after a restart every member has exactly one copy."""
    sink = start_sink(delay=0.05)
    smtp_port, http_port = free_port(), free_port()
    config = write_config(tmp_path, sink.port, smtp_port, http_port)
    members = insert_members(config, 200)
    log = tmp_path / "serve.log"
    proc = start_server(config, log)
    try:
        wait_listening(smtp_port, proc, log)
        assert send(smtp_port, members[0], LIST, post("Stop politely", "term-1", members[0])) == {}
        poll(lambda: len(received(sink, "Stop politely")) >= 20, 30, "the fan-out under way")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        assert proc.returncode == 0, log.read_text()[-3000:]
        states = queue_states(config)
        assert states["sending"] == 0, "copies not tried are given back, not left leased"
        assert states["queued"] > 0, "the whole queue was not sent before exiting"
        assert states["sent"] == len(received(sink, "Stop politely"))

        sink.delay = 0.0
        proc = start_server(config, log)
        wait_listening(smtp_port, proc, log)
        poll(lambda: len(received(sink, "Stop politely")) == len(members), 30, "every member")
        poll(lambda: queue_states(config) == {"sent": len(members)}, 10, "every row sent")
        assert set(received(sink, "Stop politely").values()) == {1}
    finally:
        stop(proc)
        assert sink.controller is not None
        sink.controller.stop()
    assert proc.returncode == 0, log.read_text()[-3000:]
