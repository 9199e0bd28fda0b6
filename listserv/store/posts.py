"""Post queries: keep a post with its decision, find duplicates, threads and held posts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, insert, inspect, select, update
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from listserv.states import PostStatus
from listserv.store.tables import Post

# Built once, run with parameters: building a statement per post (ORM attributes, values())
# cost more than running it (issue 12).
_POSTS: Table = Post.__table__  # type: ignore[attr-defined]
_INSERT = insert(_POSTS).returning(_POSTS.c.id)
_DISTRIBUTED = (
    update(_POSTS)
    .where(_POSTS.c.id == bindparam("post_id"))
    .values(status=PostStatus.ACCEPTED.value, distributed_at=bindparam("at"))
)
_DUPLICATE = (
    select(_POSTS.c.id)
    .where(
        _POSTS.c.list_name == bindparam("list_name"),
        _POSTS.c.sender == bindparam("sender"),
        _POSTS.c.message_id == bindparam("message_id"),
        _POSTS.c.received_at > bindparam("since"),
        _POSTS.c.status != PostStatus.DISCARDED.value,
    )
    .limit(1)
)


def add_post(s: Session, post: Post) -> Post:
    """Keep a new post: one Core INSERT .. RETURNING its id (the ORM's add and flush cost a
    fifth of a post's dispatch, issue 12). The post stays out of the session: change it
    through this module (mark_distributed), not by s.add."""
    post.id = s.connection().execute(_INSERT, post.model_dump(exclude={"id"})).scalar_one()
    return post


def mark_distributed(s: Session, post: Post, now: datetime) -> None:
    """The post is accepted and its copies are queued."""
    post.status, post.distributed_at = PostStatus.ACCEPTED, now
    if inspect(post).persistent:  # loaded through the session (an approval): it flushes it
        s.add(post)
        return
    s.connection().execute(_DISTRIBUTED, {"post_id": post.id, "at": now})


def is_duplicate(s: Session, list_name: str, sender: str, message_id: str, now: datetime) -> bool:
    """True when the same sender posted the same Message-ID to this list within a day."""
    if not message_id:
        return False
    s.flush()  # a Core statement does not autoflush: the session's changes go first
    since = now - timedelta(days=1)
    params = dict(list_name=list_name, sender=sender, message_id=message_id, since=since)
    return s.connection().execute(_DUPLICATE, params).first() is not None


def own_reply_depth(
    s: Session, list_name: str, sender: str, in_reply_to: str, since: datetime, limit: int = 3
) -> int:
    """How many posts in a row up the In-Reply-To chain are the sender's own, received since
    a time (at most limit): an auto-responder answering its own copies makes a long one."""
    depth = 0
    while in_reply_to and depth < limit:
        parent = s.exec(
            orm_select(col(Post.in_reply_to)).where(
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
            orm_select(col(Post.thread_key)).where(
                col(Post.list_name) == list_name, col(Post.message_id) == parent_id
            )
        ).first()
        if parent:
            return parent
    return references[0] if references else in_reply_to


def held_posts(s: Session, list_name: str | None = None) -> list[Post]:
    q = orm_select(Post).where(col(Post.status) == PostStatus.HELD)
    if list_name:
        q = q.where(col(Post.list_name) == list_name)
    return list(s.exec(q.order_by(col(Post.id))))


def posts_between(s: Session, list_name: str, start: datetime, end: datetime) -> list[Post]:
    """Accepted posts of a list received in [start, end), oldest first."""
    q = orm_select(Post).where(
        col(Post.list_name) == list_name,
        col(Post.status) == PostStatus.ACCEPTED,
        col(Post.received_at) >= start,
        col(Post.received_at) < end,
    )
    return list(s.exec(q.order_by(col(Post.received_at), col(Post.id))))
