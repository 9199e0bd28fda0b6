"""The inbound queue: every accepted message is kept here until it has been handled."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from listserv.states import InboundState
from listserv.store.tables import Inbound


def save_inbound(
    s: Session, mail_from: str, rcpts: Sequence[str], raw: bytes, now: datetime
) -> int:
    """Keep a message as accepted; it is handled after the commit (SPEC 6)."""
    row = Inbound(received_at=now, mail_from=mail_from, rcpts=json.dumps(list(rcpts)), raw=raw)
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def claim_inbound(s: Session, now: datetime, lease: timedelta, limit: int = 20) -> list[Inbound]:
    """Take up to limit new messages for this worker; a dead worker's claim lapses after lease."""
    due = (
        select(col(Inbound.id))
        .where(
            col(Inbound.state) == InboundState.NEW,
            or_(col(Inbound.claimed_until).is_(None), col(Inbound.claimed_until) < now),
        )
        .order_by(col(Inbound.id))
        .limit(limit)
    )
    if s.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = [
        row[0]
        for row in s.execute(
            update(Inbound)
            .where(
                col(Inbound.id).in_(due.scalar_subquery()), col(Inbound.state) == InboundState.NEW
            )
            .values(claimed_until=now + lease)
            .returning(col(Inbound.id))
        )
    ]
    if not ids:
        return []
    return list(s.exec(select(Inbound).where(col(Inbound.id).in_(ids)).order_by(col(Inbound.id))))


def finish_inbound(s: Session, inbound_id: int, error: str = "") -> None:
    s.execute(
        update(Inbound)
        .where(col(Inbound.id) == inbound_id)
        .values(
            state=InboundState.FAILED if error else InboundState.DONE,
            error=error[:1000],
            raw=b"" if not error else col(Inbound.raw),
        )
    )
