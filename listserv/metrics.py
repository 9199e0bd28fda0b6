"""`GET /metrics`: Prometheus text read from the store at scrape time.

Nothing on the path of a post or a copy counts anything: the collector asks the store a few
GROUP BY questions, each over an index, when Prometheus scrapes. So the figures survive a
restart and are the same whichever instance sharing the database is asked (aggregate them
with max, not sum). The one cost that would grow with history, the number of copies ever
made, is counted once and then only past a watermark (`CopyRows`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlmodel import Session

from listserv.membership import BACK_REASON
from listserv.states import Delivery, EventKind, MemberStatus, PostStatus
from listserv.store import Store, counts

# A PostgreSQL sequence hands out ids before the transaction commits, so a row may appear below
# the largest id seen; no transaction that writes copies stays open this long.
COMMIT_LAG = timedelta(minutes=5)

LEAVE_OUTCOMES = {
    EventKind.JOB_LEAVE: "job",
    EventKind.UNSURE_LEAVE: "unsure",
    EventKind.OTHER_LEAVE: "other",
}
BOUNCE_KINDS = {EventKind.BOUNCE: "hard", EventKind.BOUNCE_TEMPORARY: "temporary"}


class CopyRows:
    """How many delivery rows exist, without counting them all at every scrape.

    Rows are never deleted, so below a watermark that every writer has passed the count is
    fixed: it is kept, and each scrape counts only the rows above it (a primary-key range).
    The watermark is the largest id seen at least `lag` ago (SQLite has one writer: no lag);
    at the first scrape, the last copy made twice the lag ago.
    """

    def __init__(self, lag: timedelta) -> None:
        self.lag = lag
        self.below = 0  # rows with id <= upto
        self.upto = 0
        self.seen: deque[tuple[datetime, int]] = deque()  # (when, largest id then)

    def count(self, s: Session, now: datetime) -> int:
        if self.lag and not self.seen:  # the first scrape: start below the copies made lately
            safe = counts.last_copy_before(s, now - 2 * self.lag)
            if safe > self.upto:
                self.below, _ = counts.copy_rows(s, 0, safe)
                self.upto = safe
        above, top = counts.copy_rows(s, self.upto)
        total = self.below + above
        self.seen.append((now, top))
        mark = self.upto
        while self.seen and self.seen[0][0] <= now - self.lag:
            mark = max(mark, self.seen.popleft()[1])
        if mark == top:
            self.below, self.upto = total, top
        elif mark > self.upto:
            passed, _ = counts.copy_rows(s, self.upto, mark)
            self.below, self.upto = self.below + passed, mark
        return total


class StoreCollector(Collector):
    """The listserv_* series, read from the store at each scrape."""

    def __init__(
        self,
        store: Store,
        lists: Callable[[], Iterable[str]] = tuple,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.lists = lists  # the configured lists: their series start at 0, not at the first event
        self.clock = clock or (lambda: datetime.now(UTC))
        lag = COMMIT_LAG if store.dialect == "postgresql" else timedelta(0)
        self.copy_rows = CopyRows(lag)
        self.lock = threading.Lock()  # one scrape at a time keeps the watermark consistent

    def describe(self) -> Iterator[Metric]:
        return iter(())  # not read at registration: the store may not be open yet

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        now = self.clock()
        with self.lock, self.store.reader() as s:
            members = counts.members_by_mode(s)
            posts = counts.posts_by_status(s)
            events = counts.events_by_kind(s)
            lists = sorted(set(self.lists()) | {name for name, _ in events})
            back = EventKind.mode(Delivery.REGULAR)
            returns = counts.events_with_reason(s, lists, back, BACK_REASON)
            inbound = counts.inbound_unfinished(s)
            queue = counts.queue(s, now)
            failed = counts.copies_failed(s)
            made = self.copy_rows.count(s, now)
        yield from _posts(posts, lists)
        yield from _copies(queue, failed, made, now)
        yield from _events(events, returns, lists)
        mode = GaugeMetricFamily(
            "listserv_members",
            "Members by list, status and delivery mode.",
            labels=["list", "status", "delivery"],
        )
        for name in sorted(set(lists) | {name for name, _, _ in members}):
            for status in MemberStatus:
                for delivery in Delivery:
                    mode.add_metric(
                        [name, status, delivery], members.get((name, status, delivery), 0)
                    )
        yield mode
        waiting = GaugeMetricFamily(
            "listserv_inbound_messages",
            "Accepted messages not yet handled (new) or whose handling failed (failed).",
            labels=["state"],
        )
        for state in ("new", "failed"):
            waiting.add_metric([state], inbound.get(state, 0))
        yield waiting
        yield GaugeMetricFamily(
            "listserv_scrape_seconds",
            "How long this scrape's store queries took.",
            value=time.perf_counter() - started,
        )


def _posts(posts: dict[tuple[str, str], int], lists: list[str]) -> Iterator[Metric]:
    decided = CounterMetricFamily(
        "listserv_posts",
        "Posts by moderation outcome (an approved post counts as accepted).",
        labels=["list", "status"],
    )
    held = GaugeMetricFamily(
        "listserv_posts_held", "Posts waiting for a moderator.", labels=["list"]
    )
    for name in sorted(set(lists) | {name for name, _ in posts}):
        for status in PostStatus:
            n = posts.get((name, status), 0)
            if status == PostStatus.HELD:
                held.add_metric([name], n)
            else:
                decided.add_metric([name, status], n)
    yield decided
    yield held


def _copies(queue: counts.Queue, failed: int, made: int, now: datetime) -> Iterator[Metric]:
    unsent = queue.due + queue.deferred + queue.sending
    yield CounterMetricFamily(
        "listserv_copies_sent", "Copies the relay accepted.", value=made - unsent - failed
    )
    yield CounterMetricFamily(
        "listserv_copies_failed", "Copies given up on (a 5xx, or retried too long).", value=failed
    )
    depth = GaugeMetricFamily(
        "listserv_queue_copies",
        "Copies not yet sent: due (to go as soon as a worker is free), deferred (a temporary "
        "failure, waiting for the retry time), sending (claimed by a worker now).",
        labels=["state"],
    )
    depth.add_metric(["due"], queue.due)
    depth.add_metric(["deferred"], queue.deferred)
    depth.add_metric(["sending"], queue.sending)
    yield depth
    oldest = queue.oldest
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)  # SQLite hands datetimes back naive
    yield GaugeMetricFamily(
        "listserv_queue_oldest_seconds",
        "Age of the oldest copy not yet sent (0 when the queue is empty).",
        value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
    )


def _events(
    events: dict[tuple[str, str], int], returns: dict[str, int], lists: list[str]
) -> Iterator[Metric]:
    names = sorted(set(lists) | set(returns))

    def per_list(metric: str, doc: str, kind: str) -> CounterMetricFamily:
        family = CounterMetricFamily(metric, doc, labels=["list"])
        for name in names:
            family.add_metric([name], events.get((name, kind), 0))
        return family

    leaves = CounterMetricFamily(
        "listserv_leave_requests",
        "Leave requests by what they said: found work (job), unsure, or another reason.",
        labels=["list", "outcome"],
    )
    bounces = CounterMetricFamily(
        "listserv_bounces", "Bounces recorded, by kind.", labels=["list", "kind"]
    )
    back = CounterMetricFamily(
        "listserv_alumni_returns",
        "Members who said 'back' and get every post again.",
        labels=["list"],
    )
    for name in names:
        for kind, outcome in LEAVE_OUTCOMES.items():
            leaves.add_metric([name, outcome], events.get((name, kind), 0))
        for kind, label in BOUNCE_KINDS.items():
            bounces.add_metric([name, label], events.get((name, kind), 0))
        back.add_metric([name], returns.get(name, 0))
    yield leaves
    yield bounces
    yield per_list("listserv_joins", "Members who joined or were added.", EventKind.JOIN)
    yield per_list("listserv_leaves", "Members who left, by any way.", EventKind.LEAVE)
    yield per_list(
        "listserv_bounce_disables", "Members whose delivery bounces paused.", EventKind.DISABLED
    )
    yield per_list(
        "listserv_alumni_switches",
        "Switches to alumni mode.",
        EventKind.mode(Delivery.ALUMNI),
    )
    yield back


class Metrics:
    """One registry per server: the store's series and this process's own."""

    def __init__(self, store: Store, lists: Callable[[], Iterable[str]] = tuple) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(store, lists))
        ProcessCollector(registry=self.registry)

    def exposition(self) -> bytes:
        """The Prometheus text format, for GET /metrics."""
        return generate_latest(self.registry)
