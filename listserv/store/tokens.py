"""Confirmation tokens and the auto-reply cap."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from listserv.store import rowcount
from listserv.store.members import new_token
from listserv.store.tables import ReplyCount, Token


def create_token(
    s: Session,
    list_name: str,
    address: str,
    action: str,
    now: datetime,
    days: int,
    payload: dict | None = None,
) -> Token:
    """A fresh single-use token bound to list, address and action."""
    tok = Token(
        token=new_token(),
        list_name=list_name,
        address=address,
        action=action,
        payload=json.dumps(payload or {}),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    s.add(tok)
    s.flush()
    return tok


def live_token(s: Session, token: str, now: datetime) -> Token | None:
    """The token if it exists, is unused and has not expired."""
    tok = s.get(Token, token.strip().lower())
    if tok is None or tok.used_at is not None or tok.expires_at <= now:
        return None
    return tok


def use_token(s: Session, token: str, now: datetime) -> bool:
    """Spend a token; False when someone else spent it first (single use, race-free)."""
    result = s.execute(
        update(Token)
        .where(col(Token.token) == token, col(Token.used_at).is_(None))
        .values(used_at=now)
    )
    return rowcount(result) > 0


def recent_token(
    s: Session, list_name: str, address: str, action: str, since: datetime
) -> Token | None:
    """An unused token of this kind made since a time (to send one confirmation a day at most)."""
    q = select(Token).where(
        col(Token.list_name) == list_name,
        col(Token.address) == address,
        col(Token.action) == action,
        col(Token.created_at) >= since,
        col(Token.used_at).is_(None),
    )
    return s.exec(q.order_by(col(Token.created_at).desc())).first()


def take_reply_slot(s: Session, address: str, day: date, cap: int) -> bool:
    """Count one auto-reply to address today; False when the daily cap is reached."""
    row = s.get(ReplyCount, (address, day))
    if row is None:
        row = ReplyCount(address=address, day=day, count=0)
    if row.count >= cap:
        return False
    row.count += 1
    s.add(row)
    return True
