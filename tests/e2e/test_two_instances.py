"""Several instances, one PostgreSQL (issue 14): two real `listserv serve` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from listserv.config import load_config
from listserv.scheduler import Scheduler
from listserv.store import open_store
from tests.conftest import config_text, free_port, send
from tests.e2e.test_delivery import LIST, poll, post, start_server, wait_listening
from tests.e2e.test_delivery_stop import (
    CONNECTIONS,
    insert_members,
    queue_states,
    received,
    start_sink,
    stop,
)
from tests.pgcluster import skip_reason

_PG_SKIP = skip_reason()
pytestmark = pytest.mark.skipif(_PG_SKIP is not None, reason=_PG_SKIP or "")


class Instance:
    """One `listserv serve` process with its own folder and ports, on the shared database."""

    def __init__(self, folder: Path, database: str, relay_port: int) -> None:
        folder.mkdir()
        self.smtp_port = free_port()
        self.config = folder / "listserv.toml"
        self.config.write_text(
            config_text(
                relay=f"smtp://127.0.0.1:{relay_port}",
                listen=f"127.0.0.1:{self.smtp_port}",
                http=f"127.0.0.1:{free_port()}",
                database=database,
                server_extra='claim_lease = "5s"\n',
            )
        )
        self.log = folder / "serve.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Instance:
        self.proc = start_server(self.config, self.log)
        wait_listening(self.smtp_port, self.proc, self.log)
        return self

    def post(self, subject: str, msgid: str, sender: str) -> None:
        assert send(self.smtp_port, sender, LIST, post(subject, msgid, sender)) == {}


@pytest.fixture
def two(pg_cluster, tmp_path) -> Iterator[tuple[Instance, Instance, object]]:  # type: ignore[no-untyped-def]
    sink = start_sink(delay=0.0)
    url = pg_cluster.fresh_database(f"two_{os.getpid()}_{free_port()}")
    a = Instance(tmp_path / "a", url, sink.port)
    b = Instance(tmp_path / "b", url, sink.port)
    try:
        yield a, b, sink
    finally:
        for inst in (a, b):
            if inst.proc is not None:
                stop(inst.proc)
        assert sink.controller is not None
        sink.controller.stop()


def test_posts_accepted_by_either_instance_reach_each_member_once(two):
    """A post to A and one to B, with a reload of A between: every member gets each once."""
    a, b, sink = two
    a.start()  # the first start creates the schema; then the second joins it
    members = insert_members(a.config, 150)
    b.start()
    a.post("Via A", "via-a", members[0])
    assert a.proc is not None
    a.proc.send_signal(signal.SIGHUP)  # a reload on one must not confuse the other
    b.post("Via B", "via-b", members[1])
    for subject in ("Via A", "Via B"):
        poll(lambda s=subject: len(received(sink, s)) == len(members), 30, f"{subject} to all")
    poll(lambda: queue_states(a.config) == {"sent": 2 * len(members)}, 10, "every row sent")
    assert set(received(sink, "Via A").values()) == {1}
    assert set(received(sink, "Via B").values()) == {1}
    assert "config reloaded" in a.log.read_text()


def test_kill_9_of_one_instance_mid_fan_out_the_other_finishes_after_the_lease(two):
    """kill -9 of A while both fan out: B takes A's claims when their 5 s lease ends; nothing is
    lost and only A's copies in flight (one per connection) can arrive twice."""
    a, b, sink = two
    sink.delay = 0.01
    a.start()
    members = insert_members(a.config, 240)
    b.start()
    a.post("Shared fan-out", "shared-1", members[0])
    poll(lambda: len(received(sink, "Shared fan-out")) >= 40, 30, "the fan-out under way")
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait(timeout=10)
    poll(lambda: len(received(sink, "Shared fan-out")) == len(members), 40, "B finishing it")
    poll(lambda: queue_states(b.config) == {"sent": len(members)}, 10, "every row sent")
    counts = received(sink, "Shared fan-out")
    twice = [m for m, n in counts.items() if n > 1]
    assert max(counts.values()) <= 2
    assert len(twice) <= CONNECTIONS, f"{len(twice)} members got two copies: {twice}"


async def test_daily_maintenance_runs_on_one_instance_only(pg_cluster, tmp_path):
    """Two schedulers on one database, both firing the daily upkeep: exactly one runs it."""
    url = pg_cluster.fresh_database(f"maint_{os.getpid()}_{free_port()}")
    path = tmp_path / "listserv.toml"
    path.write_text(config_text(database=url))
    cfg = load_config(path)
    stores = [open_store(url), open_store(url)]
    try:
        schedulers = [
            Scheduler(store, lambda: cfg, lambda: None, instance_id=f"i{n}@host:{n}")
            for n, store in enumerate(stores)
        ]
        ran = await asyncio.gather(*(s.maintain() for s in schedulers))
        again = await schedulers[0].maintain()
    finally:
        for store in stores:
            store.dispose()
    assert sorted(ran) == [False, True]
    assert again is False, "the day's run is taken; a second trigger on the same day skips"
