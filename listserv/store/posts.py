"""Post queries: keep a post with its decision, find duplicates, threads and held posts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from listserv.states import PostStatus
from listserv.store.tables import Post


def add_post(s: Session, post: Post) -> Post:
    s.add(post)
    s.flush()
    return post


def is_duplicate(s: Session, list_name: str, sender: str, message_id: str, now: datetime) -> bool:
    """True when the same sender posted the same Message-ID to this list within a day."""
    if not message_id:
        return False
    q = select(col(Post.id)).where(
        col(Post.list_name) == list_name,
        col(Post.sender) == sender,
        col(Post.message_id) == message_id,
        col(Post.received_at) > now - timedelta(days=1),
        col(Post.status) != PostStatus.DISCARDED,
    )
    return s.exec(q).first() is not None


def own_reply_depth(
    s: Session, list_name: str, sender: str, in_reply_to: str, since: datetime, limit: int = 3
) -> int:
    """How many posts in a row up the In-Reply-To chain are the sender's own, received since
    a time (at most limit): an auto-responder answering its own copies makes a long one."""
    depth = 0
    while in_reply_to and depth < limit:
        parent = s.exec(
            select(col(Post.in_reply_to)).where(
                col(Post.list_name) == list_name,
                col(Post.sender) == sender,
                col(Post.message_id) == in_reply_to,
                col(Post.received_at) >= since,
            )
        ).first()
        if parent is None:
            break
        depth, in_reply_to = depth + 1, parent
    return depth


def thread_key_for(s: Session, list_name: str, in_reply_to: str, references: Sequence[str]) -> str:
    """The thread's first Message-ID, from the parent post when we have it."""
    for parent_id in [in_reply_to, *reversed(references)]:
        if not parent_id:
            continue
        parent = s.exec(
            select(col(Post.thread_key)).where(
                col(Post.list_name) == list_name, col(Post.message_id) == parent_id
            )
        ).first()
        if parent:
            return parent
    return references[0] if references else in_reply_to


def held_posts(s: Session, list_name: str | None = None) -> list[Post]:
    q = select(Post).where(col(Post.status) == PostStatus.HELD)
    if list_name:
        q = q.where(col(Post.list_name) == list_name)
    return list(s.exec(q.order_by(col(Post.id))))


def posts_between(s: Session, list_name: str, start: datetime, end: datetime) -> list[Post]:
    """Accepted posts of a list received in [start, end), oldest first."""
    q = select(Post).where(
        col(Post.list_name) == list_name,
        col(Post.status) == PostStatus.ACCEPTED,
        col(Post.received_at) >= start,
        col(Post.received_at) < end,
    )
    return list(s.exec(q.order_by(col(Post.received_at), col(Post.id))))
