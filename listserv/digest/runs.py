"""Digest runs against the store: each list, kind and period is built and queued exactly once."""

from __future__ import annotations

import logging
from bisect import bisect_right
from datetime import UTC, datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from listserv.config import Config, ListConfig
from listserv.digest.build import (
    DigestPost,
    Highlighter,
    build_alumni_digest,
    build_regular_digest,
)
from listserv.digest.pulse import TREND_PERIODS, ZERO, PeriodCounts
from listserv.errors import UsageError
from listserv.fields import split_tags
from listserv.headers import list_fields
from listserv.notices import notice
from listserv.posting import bare_subject
from listserv.states import Delivery, DigestKind, EventKind, PostStatus
from listserv.store import Store, members, outbound, posts, stats
from listserv.store.tables import DigestRun, Event, Member, Post

log = logging.getLogger("listserv.digest")


def digest_kind(kind: str) -> DigestKind:
    """The digest kind named, or a UsageError saying which kinds there are."""
    try:
        return DigestKind(kind)
    except ValueError:
        raise UsageError(f"unknown digest kind {kind!r}; use 'regular' or 'alumni'") from None


def last_run(s: Session, list_name: str, kind: str) -> DigestRun | None:
    q = select(DigestRun).where(col(DigestRun.list_name) == list_name, col(DigestRun.kind) == kind)
    return s.exec(q.order_by(col(DigestRun.period_end).desc())).first()


def next_period(s: Session, list_name: str, kind: str, now: datetime) -> tuple[datetime, datetime]:
    """(start, previous start) of the next period: it starts where the last run ended, else when
    the list was first seen; the period before it, for the pulse, is the last run's (else as long)."""
    run = last_run(s, list_name, kind)
    start = run.period_end if run else members.ensure_list(s, list_name, now).first_seen
    return start, (run.period_start if run else start - (now - start))


def last_period_end(store: Store, list_name: str, kind: str, now: datetime) -> datetime:
    """Where the next period of this list and kind starts."""
    with store.session() as s:
        return next_period(s, list_name, kind, now)[0]


def digest_post(post: Post, lst: ListConfig) -> DigestPost:
    return DigestPost(
        raw=post.raw,
        sender=post.from_header or post.sender,
        subject=bare_subject(post.subject, lst.prefix),
        received_at=post.received_at,
        message_id=post.message_id,
        thread_key=post.thread_key or post.message_id,
        topic=post.topic,
        fields=tuple(split_tags(post.fields)),
    )


def period_counts(s: Session, list_name: str, start: datetime, end: datetime) -> PeriodCounts:
    """The alumni pulse figures for [start, end), counted in the store."""

    def events(kind: str) -> int:
        q = (
            select(func.count())
            .select_from(Event)
            .where(
                col(Event.list_name) == list_name,
                col(Event.kind) == kind,
                col(Event.reason) != members.IMPORTED,  # moved over by the organiser
                col(Event.at) >= start,
                col(Event.at) < end,
            )
        )
        return s.exec(q).one()

    def topic(name: str) -> int:
        q = (
            select(func.count())
            .select_from(Post)
            .where(
                col(Post.list_name) == list_name,
                col(Post.status) == PostStatus.ACCEPTED,
                col(Post.topic) == name,
                col(Post.received_at) >= start,
                col(Post.received_at) < end,
            )
        )
        return s.exec(q).one()

    return PeriodCounts(
        joined=events(EventKind.JOIN),
        job_leaves=events(EventKind.JOB_LEAVE),
        hiring_posts=topic("hiring"),
        layoff_posts=topic("layoff"),
        backs=events(EventKind.BACK),
    )


def trend_bounds(start: datetime, end: datetime, previous_start: datetime) -> list[datetime]:
    """The edges of the last TREND_PERIODS periods, oldest first, the current one [start, end)
    last; periods before the previous one are taken as long as the one after them."""
    edges = [end, start, previous_start]
    while len(edges) < TREND_PERIODS + 1:
        step = (edges[-2] - edges[-1]) or (end - start)
        edges.append(edges[-1] - step)
    return edges[::-1]


_EVENT_FIGURES = {
    EventKind.JOIN: "joined",
    EventKind.JOB_LEAVE: "job_leaves",
    EventKind.BACK: "backs",
}


def pulse_history(s: Session, list_name: str, edges: list[datetime]) -> dict[str, list]:
    """Each period's figures between edges, for the group ('') and for each field, read from
    stored post tags and events in two queries: no post is parsed again (issue 13)."""
    periods = len(edges) - 1
    tally: dict[str, list[dict[str, int]]] = {}

    def add(key: str, at: datetime, figure: str) -> None:
        i = bisect_right(edges, _aware(at)) - 1
        if 0 <= i < periods:
            rows = tally.setdefault(key, [dict() for _ in range(periods)])
            rows[i][figure] = rows[i].get(figure, 0) + 1

    posts_q = select(col(Post.received_at), col(Post.topic), col(Post.fields)).where(
        col(Post.list_name) == list_name,
        col(Post.status) == PostStatus.ACCEPTED,
        col(Post.topic).in_(("hiring", "layoff")),
        col(Post.received_at) >= edges[0],
        col(Post.received_at) < edges[-1],
    )
    for at, topic, tags in s.exec(posts_q):
        figure = f"{topic}_posts"
        for key in ("", *split_tags(tags)):
            add(key, at, figure)
    events_q = (
        select(col(Event.at), col(Event.kind), col(Member.field))
        .select_from(Event)
        .outerjoin(
            Member,
            (col(Member.list_name) == col(Event.list_name))
            & (col(Member.address) == col(Event.address)),
        )
        .where(
            col(Event.list_name) == list_name,
            col(Event.kind).in_(list(_EVENT_FIGURES)),
            col(Event.reason) != members.IMPORTED,  # an import's members did not just join
            col(Event.at) >= edges[0],
            col(Event.at) < edges[-1],
        )
    )
    for at, kind, field in s.exec(events_q):
        for key in {"", field or ""}:
            add(key, at, _EVENT_FIGURES[EventKind(kind)])
    return {
        key: [PeriodCounts(**{**vars(ZERO), **row}) for row in rows] for key, rows in tally.items()
    }


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def compose(
    s: Session,
    cfg: Config,
    lst: ListConfig,
    kind: str,
    start: datetime,
    end: datetime,
    previous_start: datetime,
) -> tuple[list[tuple[str | None, EmailMessage]], int] | None:
    """The digest for [start, end) with the shared List-* fields, or None when there is nothing.

    A regular digest is one message (key None). The alumni update is one message per field that
    alumni chose (key: the field) and one for everyone else (key None), so 50,000 alumni in 12
    fields cost 13 renders, not 50,000 (issue 13).
    """
    tz = ZoneInfo(cfg.server.timezone)
    items = [digest_post(p, lst) for p in posts.posts_between(s, lst.name, start, end)]
    built: list[tuple[str | None, EmailMessage]] = []
    if kind == DigestKind.REGULAR:
        if not items:
            return None
        msg = build_regular_digest(
            lst, cfg.server.domain, items, period_end=end, tz=tz, fmt=lst.digest.format
        )
        built.append((None, msg))
    else:
        history = pulse_history(s, lst.name, trend_bounds(start, end, previous_start))
        group = history.get("", [ZERO] * TREND_PERIODS)
        current, previous = group[-1], group[-2]
        if not items and not current.joined and not current.job_leaves and not current.backs:
            return None
        highlighter = Highlighter(items)  # shared: each thread's excerpt is made once
        for field in [None, *alumni_fields(s, lst)]:
            msg = build_alumni_digest(
                lst,
                cfg.server.domain,
                items,
                current,
                previous,
                period_start=start,
                period_end=end,
                tz=tz,
                history=group,
                field=field or "",
                field_history=history.get(field or "", [ZERO] * TREND_PERIODS),
                highlighter=highlighter,
            )
            built.append((field, msg))
    for _field, msg in built:
        for name, value in list_fields(lst, cfg.site):
            msg[name] = value
    return built, len(items)


def alumni_fields(s: Session, lst: ListConfig) -> list[str]:
    """The list's fields that at least one active alumnus chose, in the config's order."""
    chosen = set(members.fields_in_use(s, lst.name, Delivery.ALUMNI))
    return [name for name in lst.field_table if name in chosen]


def run_digest(store: Store, cfg: Config, list_name: str, kind_name: str, now: datetime) -> str:
    """Build and queue the digest for the period since the last run; says what happened."""
    lst = cfg.list(list_name)
    kind = digest_kind(kind_name)
    if kind == DigestKind.ALUMNI and not lst.alumni.enabled:
        return "alumni mode is off for this list: nothing sent"
    with store.session() as s:
        start, previous_start = next_period(s, lst.name, kind, now)
        if start >= now:
            return "nothing to send: the period is empty"
        run = DigestRun(
            list_name=lst.name, kind=kind, period_start=start, period_end=now, created_at=now
        )
        try:
            with s.begin_nested():  # the unique (list, kind, period_start) key: exactly once
                s.add(run)
                s.flush()
        except IntegrityError:
            return "already sent by another run for this period"
        if kind == DigestKind.ALUMNI:
            owners_summary(s, cfg, lst, now)
        built = compose(s, cfg, lst, kind, start, now, previous_start)
        if built is None:
            return "nothing to report this period: nothing sent"
        messages, count = built
        queued = 0
        own_fields = [f for f, _msg in messages if f is not None]
        for field, msg in messages:
            out = outbound.add_outbound(s, lst.name, "digest", msg.as_bytes(), now)
            assert out.id is not None
            if run.outbound_id is None:
                run.outbound_id = out.id
            queued += outbound.queue_to_members(
                s,
                out.id,
                lst.name,
                (kind.audience,),
                now,
                field_in=None if field is None else [field],
                field_not_in=own_fields if field is None and own_fields else None,
            )
        run.posts = count
        s.add(run)
    log.info("%s %s digest: %d post(s), queued for %d member(s)", lst.name, kind, count, queued)
    return f"{kind} digest with {count} post(s) queued for {queued} member(s)"


def owners_summary(s: Session, cfg: Config, lst: ListConfig, now: datetime) -> None:
    """The owners get the organiser's view (listserv stats) by mail on the alumni schedule."""
    if not lst.owners:
        return
    rows = stats.monthly(s, lst.name, now, ZoneInfo(cfg.server.timezone), months=6)
    notice(s, lst, cfg.site, lst.owners, "admin/stats.txt", now, rows=rows, months=len(rows))


def preview(
    store: Store, cfg: Config, list_name: str, kind_name: str, now: datetime
) -> EmailMessage | None:
    """The digest the next run would send, without recording or sending anything."""
    lst = cfg.list(list_name)
    kind = digest_kind(kind_name)
    if kind == DigestKind.ALUMNI and not lst.alumni.enabled:
        return None  # run_digest would send none either
    with store.session() as s:
        start, previous_start = next_period(s, lst.name, kind, now)
        built = compose(s, cfg, lst, kind, start, now, previous_start)
    return built[0][0][1] if built else None
