"""Post and inbound-queue queries: keep what arrived, decide, find held posts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, select

from listserv.store.tables import Inbound, Post


def save_inbound(s: Session, mail_from: str, rcpts: Sequence[str], raw: bytes, now: datetime) -> int:
    """Keep a message as accepted; it is handled after the commit (SPEC 6)."""
    row = Inbound(received_at=now, mail_from=mail_from, rcpts=json.dumps(list(rcpts)), raw=raw)
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def claim_inbound(s: Session, now: datetime, lease: timedelta, limit: int = 20) -> list[Inbound]:
    """Take up to limit new messages for this worker; a dead worker's claim lapses after lease."""
    due = (select(Inbound.id)
           .where(Inbound.state == "new",
                  or_(Inbound.claimed_until.is_(None), Inbound.claimed_until < now))
           .order_by(Inbound.id).limit(limit))
    if s.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [row[0] for row in s.execute(
        update(Inbound).where(Inbound.id.in_(due.scalar_subquery()), Inbound.state == "new")
        .values(claimed_until=now + lease).returning(Inbound.id))]
    if not ids:
        return []
    return list(s.exec(select(Inbound).where(Inbound.id.in_(ids)).order_by(Inbound.id)))


def finish_inbound(s: Session, inbound_id: int, error: str = "") -> None:
    s.execute(update(Inbound).where(Inbound.id == inbound_id)
              .values(state="failed" if error else "done", error=error[:1000], raw=b"" if not error else Inbound.raw))


def add_post(s: Session, post: Post) -> Post:
    s.add(post)
    s.flush()
    return post


def is_duplicate(s: Session, list_name: str, sender: str, message_id: str, now: datetime) -> bool:
    """True when the same sender posted the same Message-ID to this list within a day."""
    if not message_id:
        return False
    q = select(Post.id).where(Post.list_name == list_name, Post.sender == sender,
                              Post.message_id == message_id,
                              Post.received_at > now - timedelta(days=1),
                              Post.status != "discarded")
    return s.exec(q).first() is not None


def thread_key_for(s: Session, list_name: str, in_reply_to: str, references: Sequence[str]) -> str:
    """The thread's first Message-ID, from the parent post when we have it."""
    for parent_id in [in_reply_to, *reversed(references)]:
        if not parent_id:
            continue
        parent = s.exec(select(Post.thread_key).where(Post.list_name == list_name,
                                                      Post.message_id == parent_id)).first()
        if parent:
            return parent
    return references[0] if references else in_reply_to


def held_posts(s: Session, list_name: str | None = None) -> list[Post]:
    q = select(Post).where(Post.status == "held")
    if list_name:
        q = q.where(Post.list_name == list_name)
    return list(s.exec(q.order_by(Post.id)))


def posts_between(s: Session, list_name: str, start: datetime, end: datetime) -> list[Post]:
    """Accepted posts of a list received in [start, end), oldest first."""
    q = select(Post).where(Post.list_name == list_name, Post.status == "accepted",
                           Post.received_at >= start, Post.received_at < end)
    return list(s.exec(q.order_by(Post.received_at, Post.id)))
