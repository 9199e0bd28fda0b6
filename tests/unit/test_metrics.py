"""The metrics' copy count: exact at every scrape while it counts only the rows past a watermark."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import insert

from listserv.metrics import CopyRows
from listserv.store import Store
from listserv.store.tables import Delivery
from tests.conftest import NOW

_serial = itertools.count()


def add(store: Store, n: int) -> None:
    """n sent copies, straight into the store."""
    rows = [
        dict(
            outbound_id=1,
            recipient=f"m{next(_serial)}@example.com",
            state="sent",
            created_at=NOW,
            next_attempt_at=NOW,
        )
        for _ in range(n)
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(Delivery.__table__), rows)


def test_copy_count_is_exact_and_moves_its_watermark_only_after_the_commit_lag(store):
    """With a five-minute lag the count stays exact at each scrape, and the rows below the
    watermark are counted once: it advances to the largest id seen five minutes before."""
    rows = CopyRows(timedelta(minutes=5))
    add(store, 10)
    with store.reading() as s:
        assert rows.count(s, NOW) == 10
    assert rows.upto == 0  # nothing is five minutes old yet
    add(store, 5)
    with store.reading() as s:
        assert rows.count(s, NOW + timedelta(minutes=2)) == 15
    add(store, 3)
    with store.reading() as s:
        assert rows.count(s, NOW + timedelta(minutes=6)) == 18
    assert (rows.upto, rows.below) == (10, 10)  # the largest id seen at NOW
    with store.reading() as s:
        assert rows.count(s, NOW + timedelta(minutes=12)) == 18
    assert (rows.upto, rows.below) == (18, 18)


def test_copy_count_without_a_lag_keeps_everything_it_has_seen(store):
    """SQLite has one writer: the watermark is the largest id at each scrape."""
    rows = CopyRows(timedelta(0))
    with store.reading() as s:
        assert rows.count(s, NOW) == 0
    add(store, 7)
    with store.reading() as s:
        assert rows.count(s, NOW) == 7
    assert (rows.upto, rows.below) == (7, 7)
