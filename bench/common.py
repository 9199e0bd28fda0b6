"""Shared helpers for the benchmarks: a config, a store full of members, peak RSS."""

from __future__ import annotations

import resource
import secrets
import shutil
import socket
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # so `tests.pgcluster` imports when run as `python bench/x.py`
    sys.path.insert(1, str(ROOT))

DOMAIN = "lists.example.org"
LIST = "networking"
MAILMAN_PERSONALIZED = (
    37  # deliveries/s, GNU Mailman 3.3.10 personalized (shared/anchors/README.md)
)
CHUNK = 10_000


def clean_up(folder: Path, db, keep: bool) -> None:  # type: ignore[no-untyped-def]
    """Close the database (a throwaway cluster, if any) and remove the run's folder unless kept."""
    if db is not None:
        db.close()
    if keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def address(i: int) -> str:
    return f"user{i:07d}@example.net"


def config_text(database: str, relay_port: int | None = None, connections: int = 4) -> str:
    relay = f"smtp://127.0.0.1:{relay_port}" if relay_port else "outbox:var/outbox"
    return textwrap.dedent(f"""\
        [server]
        domain = "{DOMAIN}"
        listen = "127.0.0.1:0"
        http_listen = "127.0.0.1:0"
        base_url = "http://127.0.0.1:8080"
        database = "{database}"
        relay = "{relay}"
        delivery_connections = {connections}
        log_level = "warning"

        [lists.{LIST}]
        title = "Tri-County Job Seekers Networking"
        description = "Leads and encouragement."
        owners = ["owner@example.org"]
        subject_prefix = "[networking] "
        dmarc = "none"
        """)


def write_config(folder: Path, database: str, relay_port: int | None = None, connections: int = 4):  # type: ignore[no-untyped-def]
    from listserv.config import parse_config

    path = folder / "listserv.toml"
    path.write_text(config_text(database, relay_port, connections))
    return parse_config(path.read_text(), path)


def insert_members(
    url: str, n: int, delivery: str = "regular", fields: tuple[str, ...] = ()
) -> float:
    """Bulk-insert n active members with SQLAlchemy core, 10k rows a statement; returns seconds.
    With fields, member i is in fields[i % len(fields)]."""
    from sqlalchemy import insert

    from listserv.store import open_store
    from listserv.store.tables import Member

    t = time.perf_counter()
    store = open_store(url)
    now = datetime.now(UTC)
    try:
        with store.engine.begin() as conn:
            for start in range(0, n, CHUNK):
                rows = [
                    dict(
                        list_name=LIST,
                        address=address(i),
                        name="",
                        status="active",
                        delivery=delivery,
                        token=secrets.token_hex(20),
                        created_at=now,
                        joined_at=now,
                        left_reason="",
                        bounce_score=0.0,
                        probes_sent=0,
                        field=fields[i % len(fields)] if fields else "",
                    )
                    for i in range(start, min(start + CHUNK, n))
                ]
                conn.execute(insert(Member.__table__), rows)
    finally:
        store.dispose()
    return time.perf_counter() - t


def in_child(fn, *args):  # type: ignore[no-untyped-def]
    """Run fn(*args) in a forked child so its memory does not count toward our peak RSS."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def run() -> None:
        try:
            child.send(("ok", fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            child.send(("error", f"{type(exc).__name__}: {exc}"))

    p = ctx.Process(target=run)
    p.start()
    status, value = parent.recv()
    p.join()
    if status != "ok":
        raise RuntimeError(value)
    return value


class Database:
    """A SQLite file in the temp folder, or a throwaway PostgreSQL cluster (tests/pgcluster.py)."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.cluster = None
        if kind == "sqlite":
            self.url = f"sqlite:///{folder / 'listserv.db'}"
        else:
            from tests.pgcluster import PgCluster

            self.cluster = PgCluster().start()
            self.url = self.cluster.url

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
