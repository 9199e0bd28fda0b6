"""The organiser's view (issue 13): per month, joins, leaves, alumni, comebacks, posts, modes."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from listserv.states import Delivery, EventKind, MemberStatus, PostStatus
from listserv.store.tables import Event, Member, Post

# The JSON keys of `listserv stats --json` (SPEC 10), in order.
KEYS = (
    "month",
    "joins",
    "leaves",
    "job_leaves",
    "alumni_switches",
    "alumni_left",
    "backs",
    "hiring_posts",
    "layoff_posts",
    "regular",
    "digest",
    "alumni",
)
_EVENTS = {
    EventKind.JOIN: "joins",
    EventKind.LEAVE: "leaves",
    EventKind.JOB_LEAVE: "job_leaves",
    EventKind.mode(Delivery.ALUMNI): "alumni_switches",
    EventKind.ALUMNI_LEFT: "alumni_left",
    EventKind.BACK: "backs",
}


def month_starts(now: datetime, tz: tzinfo, months: int) -> list[datetime]:
    """The first instants of the last `months` calendar months and of the next, oldest first."""
    local = now.astimezone(tz)
    y, m = local.year, local.month
    starts = []
    for _ in range(months):
        starts.append(datetime(y, m, 1, tzinfo=tz))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    starts.reverse()
    ny, nm = (local.year, local.month + 1) if local.month < 12 else (local.year + 1, 1)
    return [*starts, datetime(ny, nm, 1, tzinfo=tz)]


def monthly(s: Session, list_name: str, now: datetime, tz: tzinfo, months: int = 6) -> list[dict]:
    """One row per month, oldest first, with the KEYS. Ordinary leaves exclude alumni who left
    fully (counted as alumni_left); members by mode are those on the list at the month's end
    (or now, for the current month), by their delivery mode today."""
    edges = month_starts(now, tz, max(months, 1))
    rows: list[dict[str, Any]] = [
        dict.fromkeys(KEYS, 0) | {"month": f"{e.year:04d}-{e.month:02d}"} for e in edges[:-1]
    ]

    def slot(at: datetime) -> dict[str, Any] | None:
        i = bisect_right(edges, at if at.tzinfo else at.replace(tzinfo=UTC)) - 1
        return rows[i] if 0 <= i < len(rows) else None

    events = select(col(Event.at), col(Event.kind)).where(
        col(Event.list_name) == list_name,
        col(Event.kind).in_(list(_EVENTS)),
        col(Event.at) >= edges[0],
        col(Event.at) < edges[-1],
    )
    for at, kind in s.exec(events):
        if (row := slot(at)) is not None:
            row[_EVENTS[kind]] += 1
    topics = select(col(Post.received_at), col(Post.topic)).where(
        col(Post.list_name) == list_name,
        col(Post.status) == PostStatus.ACCEPTED,
        col(Post.topic).in_(("hiring", "layoff")),
        col(Post.received_at) >= edges[0],
        col(Post.received_at) < edges[-1],
    )
    for at, topic in s.exec(topics):
        if (row := slot(at)) is not None:
            row[f"{topic}_posts"] += 1
    for row, end in zip(rows, edges[1:], strict=True):
        row["leaves"] -= row["alumni_left"]  # every full leave logs LEAVE; alumni also ALUMNI_LEFT
        row.update(members_by_mode(s, list_name, min(end, now)))
    return rows


def members_by_mode(s: Session, list_name: str, at: datetime) -> dict[str, int]:
    """Members who had joined by `at` and had not left by then, per delivery mode."""
    q = (
        select(col(Member.delivery), func.count())
        .where(
            col(Member.list_name) == list_name,
            col(Member.status) != MemberStatus.PENDING,
            col(Member.joined_at) <= at,
            or_(col(Member.left_at).is_(None), col(Member.left_at) > at),
        )
        .group_by(col(Member.delivery))
    )
    counts = dict.fromkeys(("regular", "digest", "alumni"), 0)
    for delivery, n in s.exec(q):
        if delivery in counts:
            counts[delivery] = n
    return counts
