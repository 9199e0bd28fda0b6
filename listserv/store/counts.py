"""Aggregates for /metrics: a few GROUP BY counts, each over an index, read at scrape time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from listserv.states import UNSENT, CopyState, InboundState
from listserv.store.tables import Delivery, Event, Inbound, Member, Post


@dataclass(frozen=True)
class Queue:
    """The copies not yet sent: waiting for a first try, deferred after a temporary failure,
    or being sent now; and when the oldest of them was queued."""

    new: int = 0
    deferred: int = 0
    sending: int = 0
    oldest: datetime | None = None


def members_by_mode(s: Session) -> dict[tuple[str, str, str], int]:
    """(list, status, delivery) -> members; the member index covers it."""
    q = select(col(Member.list_name), col(Member.status), col(Member.delivery), func.count())
    q = q.group_by(col(Member.list_name), col(Member.status), col(Member.delivery))
    return {(name, status, mode): n for name, status, mode, n in s.exec(q)}


def posts_by_status(s: Session) -> dict[tuple[str, str], int]:
    """(list, moderation status) -> posts."""
    q = select(col(Post.list_name), col(Post.status), func.count())
    q = q.group_by(col(Post.list_name), col(Post.status))
    return {(name, status): n for name, status, n in s.exec(q)}


def events_by_kind(s: Session) -> dict[tuple[str, str], int]:
    """(list, event kind) -> events ever recorded; the (list, kind, at) index covers it."""
    q = select(col(Event.list_name), col(Event.kind), func.count())
    q = q.group_by(col(Event.list_name), col(Event.kind))
    return {(name, kind): n for name, kind, n in s.exec(q)}


def events_with_reason(s: Session, kind: str, reason: str) -> dict[str, int]:
    """list -> events of one kind with one exact reason (e.g. the switches made by 'back')."""
    q = (
        select(col(Event.list_name), func.count())
        .where(col(Event.kind) == kind, col(Event.reason) == reason)
        .group_by(col(Event.list_name))
    )
    return {name: n for name, n in s.exec(q)}


def inbound_unfinished(s: Session) -> dict[str, int]:
    """Inbound messages still new or failed (done ones are not counted: they only grow)."""
    q = (
        select(col(Inbound.state), func.count())
        .where(col(Inbound.state).in_((InboundState.NEW, InboundState.FAILED)))
        .group_by(col(Inbound.state))
    )
    return {state: n for state, n in s.exec(q)}


def queue(s: Session) -> Queue:
    """The unsent copies by state; reads only the queued and sending rows (the due index)."""
    retried = case((col(Delivery.attempts) > 0, 1), else_=0)
    q = (
        select(col(Delivery.state), retried, func.count(), func.min(col(Delivery.created_at)))
        .where(col(Delivery.state).in_(UNSENT))
        .group_by(col(Delivery.state), retried)
    )
    new = deferred = sending = 0
    oldest: datetime | None = None
    for state, was_tried, n, first in s.exec(q):
        if state == CopyState.SENDING:
            sending += n
        elif was_tried:
            deferred += n
        else:
            new += n
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return Queue(new=new, deferred=deferred, sending=sending, oldest=oldest)


def copies_failed(s: Session) -> int:
    """Copies given up on: a range of the due index, as small as the failures."""
    q = select(func.count()).select_from(Delivery).where(col(Delivery.state) == CopyState.FAILED)
    return s.exec(q).one()


def copy_rows(s: Session, after_id: int, upto_id: int | None = None) -> tuple[int, int]:
    """(rows with after_id < id [<= upto_id], the largest id): a primary-key range count.

    Delivery rows are never deleted, so the count of an id range that every writer has left
    never changes; the metrics cache it and count only the rows past it."""
    q = select(func.count(), func.max(col(Delivery.id))).where(col(Delivery.id) > after_id)
    if upto_id is not None:
        q = q.where(col(Delivery.id) <= upto_id)
    n, top = s.exec(q).one()
    return n, top or after_id
