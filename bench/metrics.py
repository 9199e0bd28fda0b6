"""Metrics benchmark: how long GET /metrics takes on a 100,000-member list with a history.

    python bench/metrics.py [--members N] [--posts P] [--db sqlite|postgresql] [--keep]

It fills a store (not timed): N active members with a join event each, P past posts each
fanned out to every member (P x N delivery rows, sent, 1% failed), and one post being fanned
out now (N copies queued, a tenth of them deferred). Then it times listserv's /metrics text
(listserv.metrics.Metrics.exposition) against that store: the first scrape (which counts the
delivery rows once) and the median and worst of 20 scrapes after it. On PostgreSQL it runs
VACUUM ANALYZE after the fill, as autovacuum would, so counts can use index-only scans.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def fill(url: str, members: int, posts: int) -> float:
    """The history, inserted in SQL (INSERT ... SELECT over the members); returns seconds."""
    from sqlalchemy import text

    from listserv.store import open_store

    started = time.perf_counter()
    common.insert_members(url, members)
    store = open_store(url)
    now = datetime.now(UTC)
    copy = (
        "INSERT INTO delivery (outbound_id, member_id, recipient, token, state, attempts,"
        " created_at, next_attempt_at, last_error) SELECT :ob, id, address, token,"
        " CASE WHEN id % 100 = 0 THEN 'failed' ELSE :state END,"
        " CASE WHEN :state = 'queued' AND id % 10 = 0 THEN 1 ELSE 0 END,"
        " :at, :at, '' FROM member"
    )
    try:
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO event (list_name, address, kind, reason, at)"
                    " SELECT list_name, address, 'join', 'bench', :at FROM member"
                ),
                {"at": now},
            )
        for p in range(posts + 1):
            at = now - timedelta(days=posts - p)
            state = "sent" if p < posts else "queued"
            with store.engine.begin() as conn:
                post_id = conn.execute(
                    text(
                        "INSERT INTO post (list_name, message_id, sender, from_header, subject,"
                        " received_at, raw, status, reason, thread_key, in_reply_to)"
                        " VALUES ('networking', :mid, 'a@example.com', '', 's', :at, :raw,"
                        " 'accepted', '', '', '') RETURNING id"
                    ),
                    {"mid": f"<{p}@bench>", "at": at, "raw": b"x"},
                ).scalar_one()
                ob = conn.execute(
                    text(
                        "INSERT INTO outbound (list_name, kind, post_id, created_at, raw)"
                        " VALUES ('networking', 'post', :post, :at, :raw) RETURNING id"
                    ),
                    {"post": post_id, "at": at, "raw": b"x"},
                ).scalar_one()
                conn.execute(text(copy), {"ob": ob, "state": state, "at": at})
        if store.dialect == "postgresql":  # what autovacuum does soon after a bulk load
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
    finally:
        store.dispose()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=30)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from listserv.metrics import Metrics
    from listserv.store import open_store

    folder = Path(tempfile.mkdtemp(prefix="listserv-bench-metrics-"))
    db = common.Database(args.db, folder)
    try:
        took = fill(db.url, args.members, args.posts)
        rows = (args.posts + 1) * args.members
        print(
            f"store: {args.members:,} members, {args.posts} past posts, {rows:,} delivery rows"
            f" ({args.db}, filled in {took:.1f} s, not timed)"
        )
        store = open_store(db.url)
        metrics = Metrics(store)
        t = time.perf_counter()
        text = metrics.exposition()
        first = time.perf_counter() - t
        times = []
        for _ in range(20):
            t = time.perf_counter()
            metrics.exposition()
            times.append(time.perf_counter() - t)
        store.dispose()
        sent = next(
            line for line in text.decode().splitlines() if line.startswith("listserv_copies_sent")
        )
        print(f"check: {sent}")
        print(
            f"scrape: first {first * 1000:.0f} ms, then median {statistics.median(times) * 1000:.0f}"
            f" ms, worst {max(times) * 1000:.0f} ms (20 scrapes, {len(text):,} bytes)"
        )
        expected = args.posts * args.members - args.posts * (args.members // 100)
        return 0 if float(sent.split()[-1]) == expected else 1
    finally:
        common.clean_up(folder, db, args.keep)


if __name__ == "__main__":
    sys.exit(main())
