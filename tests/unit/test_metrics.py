"""The metrics' copy count: exact at every scrape while it counts only the rows past a watermark."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from listserv.metrics import CopyRows, Metrics
from listserv.store import Store, members
from listserv.store.tables import Delivery, Post
from tests.conftest import NOW

_serial = itertools.count()


def add(store: Store, n: int, made: datetime = NOW) -> None:
    """n sent copies, straight into the store."""
    rows = [
        dict(
            outbound_id=1,
            recipient=f"m{next(_serial)}@example.com",
            state="sent",
            created_at=made,
            next_attempt_at=made,
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
    with store.reader() as s:
        assert rows.count(s, NOW) == 10
    assert rows.upto == 0  # nothing is five minutes old yet
    add(store, 5)
    with store.reader() as s:
        assert rows.count(s, NOW + timedelta(minutes=2)) == 15
    add(store, 3)
    with store.reader() as s:
        assert rows.count(s, NOW + timedelta(minutes=6)) == 18
    assert (rows.upto, rows.below) == (10, 10)  # the largest id seen at NOW
    with store.reader() as s:
        assert rows.count(s, NOW + timedelta(minutes=12)) == 18
    assert (rows.upto, rows.below) == (18, 18)


def test_first_count_with_a_lag_starts_below_the_copies_made_within_twice_the_lag(store):
    """After a restart the old copies are counted once, not at every scrape for five minutes."""
    add(store, 30, made=NOW - timedelta(hours=1))
    add(store, 4, made=NOW - timedelta(minutes=1))
    rows = CopyRows(timedelta(minutes=5))
    with store.reader() as s:
        assert rows.count(s, NOW) == 34
    assert (rows.upto, rows.below) == (30, 30)


def test_copy_count_without_a_lag_keeps_everything_it_has_seen(store):
    """SQLite has one writer: the watermark is the largest id at each scrape."""
    rows = CopyRows(timedelta(0))
    with store.reader() as s:
        assert rows.count(s, NOW) == 0
    add(store, 7)
    with store.reader() as s:
        assert rows.count(s, NOW) == 7
    assert (rows.upto, rows.below) == (7, 7)


def test_the_grafana_dashboard_asks_only_for_series_metrics_exposes(store):
    """Every listserv_* name in deploy/grafana-dashboard.json is a sample /metrics can show."""
    add(store, 1)
    with store.session() as s:
        members.upsert_member(s, "networking", "ann@example.com", NOW, status="active")
        members.log_event(s, "networking", "ann@example.com", "join", "test", NOW)
        s.add(Post(list_name="networking", received_at=NOW, raw=b"x"))
    text = Metrics(store).exposition().decode()
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    dashboard = (Path(__file__).parents[2] / "deploy" / "grafana-dashboard.json").read_text()
    asked = set(re.findall(r"listserv_[a-z_]+", json.dumps(json.loads(dashboard)["panels"])))
    assert asked and asked <= exposed, asked - exposed
