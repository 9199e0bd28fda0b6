"""Digest runs against the store: each list, kind and period is built and queued exactly once."""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from listserv.config import Config, ListConfig
from listserv.digest.build import (
    DigestPost,
    PeriodCounts,
    build_alumni_digest,
    build_regular_digest,
)
from listserv.errors import UsageError
from listserv.headers import list_fields
from listserv.posting import bare_subject
from listserv.states import DigestKind, EventKind, PostStatus
from listserv.store import Store, members, outbound, posts
from listserv.store.tables import DigestRun, Event, Post

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
    )


def compose(
    s: Session,
    cfg: Config,
    lst: ListConfig,
    kind: str,
    start: datetime,
    end: datetime,
    previous_start: datetime,
) -> tuple[EmailMessage, int] | None:
    """The digest for [start, end) with the shared List-* fields, or None when there is nothing."""
    tz = ZoneInfo(cfg.server.timezone)
    items = [digest_post(p, lst) for p in posts.posts_between(s, lst.name, start, end)]
    if kind == DigestKind.REGULAR:
        if not items:
            return None
        msg = build_regular_digest(
            lst, cfg.server.domain, items, period_end=end, tz=tz, fmt=lst.digest.format
        )
    else:
        current = period_counts(s, lst.name, start, end)
        if not items and not current.joined and not current.job_leaves:
            return None
        previous = period_counts(s, lst.name, previous_start, start)
        msg = build_alumni_digest(
            lst,
            cfg.server.domain,
            items,
            current,
            previous,
            period_start=start,
            period_end=end,
            tz=tz,
        )
    for name, value in list_fields(lst, cfg.site):
        msg[name] = value
    return msg, len(items)


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
        built = compose(s, cfg, lst, kind, start, now, previous_start)
        if built is None:
            return "nothing to report this period: nothing sent"
        msg, count = built
        out = outbound.add_outbound(s, lst.name, "digest", msg.as_bytes(), now)
        run.outbound_id, run.posts = out.id, count
        s.add(run)
        queued = outbound.queue_to_members(s, out.id, lst.name, (kind.audience,), now)  # type: ignore[arg-type]
    log.info("%s %s digest: %d post(s), queued for %d member(s)", lst.name, kind, count, queued)
    return f"{kind} digest with {count} post(s) queued for {queued} member(s)"


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
    return built[0] if built else None
