"""Member queries: find, add, change status and delivery mode, stream for fan-out."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from listserv.states import Delivery, EventKind, MemberStatus, TokenAction
from listserv.store.tables import Event, ListState, Member, Token


def new_token() -> str:
    """An unguessable token: 160 random bits, URL- and local-part-safe."""
    return secrets.token_hex(20)


def ensure_list(s: Session, name: str, now: datetime) -> ListState:
    """The list's row, created the first time the list is seen."""
    row = s.get(ListState, name)
    if row is None:
        row = ListState(name=name, first_seen=now)
        s.add(row)
        s.flush()
    return row


def get_member(s: Session, list_name: str, address: str) -> Member | None:
    return s.exec(
        select(Member).where(col(Member.list_name) == list_name, col(Member.address) == address)
    ).first()


def member_by_token(s: Session, token: str) -> Member | None:
    return s.exec(select(Member).where(col(Member.token) == token)).first()


FORMER_TOKEN_KEPT = timedelta(days=365)


def former_member(s: Session, token: str) -> Member | None:
    """The member who left with this (old) unsubscribe token, while they are still gone; None
    once they are back: their old links are dead."""
    tok = s.get(Token, token.strip().lower())
    if tok is None or tok.action != TokenAction.UNSUBSCRIBED:
        return None
    member = get_member(s, tok.list_name, tok.address)
    return member if member is not None and member.status == MemberStatus.LEFT else None


def log_event(
    s: Session, list_name: str, address: str, kind: str, reason: str, now: datetime
) -> None:
    """Record a join, leave, mode change or bounce with its reason."""
    s.add(Event(list_name=list_name, address=address, kind=kind, reason=reason[:500], at=now))


def upsert_member(
    s: Session,
    list_name: str,
    address: str,
    now: datetime,
    *,
    status: str,
    delivery: str = Delivery.REGULAR,
    name: str = "",
) -> Member:
    """Create the member or reset a former one; the unsubscribe token is kept if there is one."""
    member = get_member(s, list_name, address)
    if member is None:
        member = Member(list_name=list_name, address=address, token=new_token(), created_at=now)
    member.status = status
    member.delivery = delivery
    if name:
        member.name = name
    if status == MemberStatus.ACTIVE:
        member.joined_at = now
        member.left_at = None
        member.left_reason = ""
        member.bounce_score = 0.0
    s.add(member)
    s.flush()
    return member


def activate(s: Session, member: Member, now: datetime, reason: str) -> None:
    member.status = MemberStatus.ACTIVE
    member.joined_at = now
    member.left_at = None
    member.left_reason = ""
    member.bounce_score = 0.0
    member.disabled_at = None
    member.probes_sent = 0
    s.add(member)
    log_event(s, member.list_name, member.address, EventKind.JOIN, reason, now)


def remove(s: Session, member: Member, now: datetime, reason: str) -> None:
    """Mark the member as left (kept for the record and the pulse, never mailed again).

    The unsubscribe token changes, so an old link never removes a re-added member (SPEC 9);
    the old one is kept as a spent token, so a second click still says "you have left".
    """
    if member.status != MemberStatus.LEFT:
        s.add(
            Token(
                token=member.token,
                list_name=member.list_name,
                address=member.address,
                action=TokenAction.UNSUBSCRIBED,
                created_at=now,
                expires_at=now + FORMER_TOKEN_KEPT,
                used_at=now,
            )
        )
        member.token = new_token()
    member.status = MemberStatus.LEFT
    member.left_at = now
    member.left_reason = reason[:500]
    s.add(member)
    log_event(s, member.list_name, member.address, EventKind.LEAVE, reason, now)


def set_delivery(s: Session, member: Member, delivery: str, now: datetime, reason: str) -> None:
    member.delivery = delivery
    s.add(member)
    log_event(s, member.list_name, member.address, EventKind.mode(delivery), reason, now)


def list_members(s: Session, list_name: str, status: str | None = None) -> Iterator[Member]:
    """Stream a list's members in address order, optionally of one status."""
    q = select(Member).where(col(Member.list_name) == list_name)
    if status:
        q = q.where(col(Member.status) == status)
    q = q.order_by(col(Member.address)).execution_options(yield_per=1000)
    yield from s.exec(q)


def count_members(s: Session, list_name: str) -> dict[str, int]:
    """Members per status."""
    q = (
        select(col(Member.status), func.count())
        .where(col(Member.list_name) == list_name)
        .group_by(col(Member.status))
    )
    return {status: n for status, n in s.exec(q)}
