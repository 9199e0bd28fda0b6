"""The inbound queue: every accepted message is kept here until it has been handled."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, bindparam, insert, or_, update
from sqlmodel import Session, col, select

from listserv.states import InboundState
from listserv.store.tables import Inbound


def save_inbound(
    s: Session, mail_from: str, rcpts: Sequence[str], raw: bytes, now: datetime
) -> int:
    """Keep a message as accepted; it is handled after the commit (SPEC 6)."""
    return save_many(s, [(mail_from, rcpts, raw)], now)[0]


def save_many(
    s: Session, messages: Sequence[tuple[str, Sequence[str], bytes]], now: datetime
) -> list[int]:
    """Keep several accepted messages in the caller's transaction (one commit for all)."""
    return [save_claimed(s, f, r, raw, now).id or 0 for f, r, raw in messages]


def save_claimed(
    s: Session,
    mail_from: str,
    rcpts: Sequence[str],
    raw: bytes,
    now: datetime,
    instance: str = "",
    until: datetime | None = None,
) -> Inbound:
    """Keep an accepted message, already claimed by instance until `until` when given: the
    saving process hands it to its own worker in memory, with no claim transaction (issue 12);
    a crash leaves the claim to be taken back. Returns the row as stored."""
    row = Inbound(
        received_at=now,
        mail_from=mail_from,
        rcpts=json.dumps(list(rcpts)),
        raw=raw,
        state=InboundState.NEW,
        error="",
        attempts=0,
        claimed_by=instance if until is not None else "",
        claimed_until=until,
    )
    # one INSERT .. RETURNING a row (the id on every dialect), built once and run on the
    # session's connection: building it per save, through the ORM, cost more than running it
    row.id = s.connection().execute(_SAVE, row.model_dump(exclude={"id"})).scalar_one()
    return row


_INBOUND: Table = Inbound.__table__  # type: ignore[attr-defined]
_SAVE = insert(_INBOUND).returning(_INBOUND.c.id)


def claim_inbound(
    s: Session, now: datetime, lease: timedelta, instance: str = "", limit: int = 20
) -> list[Inbound]:
    """Take up to limit due messages for this instance; a dead instance's claim lapses after
    lease, and a failed message waits for its next try."""
    due = (
        select(col(Inbound.id))
        .where(
            col(Inbound.state) == InboundState.NEW,
            or_(col(Inbound.claimed_until).is_(None), col(Inbound.claimed_until) < now),
            or_(col(Inbound.next_attempt_at).is_(None), col(Inbound.next_attempt_at) <= now),
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
            .values(claimed_until=now + lease, claimed_by=instance)
            .returning(col(Inbound.id))
        )
    ]
    if not ids:
        return []
    return list(s.exec(select(Inbound).where(col(Inbound.id).in_(ids)).order_by(col(Inbound.id))))


def take_back(s: Session, instances: Sequence[str]) -> int:
    """Release the claims these (dead) instances held, so they are handled at once."""
    if not instances:
        return 0
    result = s.execute(
        update(Inbound)
        .where(
            col(Inbound.state) == InboundState.NEW,
            col(Inbound.claimed_by).in_(list(instances)),
        )
        .values(
            claimed_until=None,
            claimed_by="",
            # counted as a try, so a message that kills the process cannot loop for ever
            attempts=col(Inbound.attempts) + 1,
            error="interrupted: the process handling it stopped",
        )
    )
    return max(getattr(result, "rowcount", 0) or 0, 0)


def release(s: Session, ids: Sequence[int]) -> None:
    """Give claimed messages back untouched, for the next pass."""
    if ids:
        s.execute(
            update(Inbound)
            .where(col(Inbound.id).in_(list(ids)))
            .values(claimed_until=None, claimed_by="")
        )


def claimants(s: Session) -> list[str]:
    """The instance ids holding claims on unfinished messages."""
    return list(
        s.exec(
            select(Inbound.claimed_by)
            .where(col(Inbound.state) == InboundState.NEW, col(Inbound.claimed_by) != "")
            .distinct()
        )
    )


def finish_inbound(s: Session, inbound_id: int, error: str = "", attempts: int = 0) -> None:
    """Done (its raw bytes dropped), or with error parked for good after attempts tries."""
    if not error:  # Core, built once: the ORM's bulk-update bookkeeping cost ~1 ms a message
        s.connection().execute(_DONE, {"inbound_id": inbound_id})
        return
    s.connection().execute(
        update(Inbound)
        .where(col(Inbound.id) == inbound_id)
        .values(
            attempts=attempts, state=InboundState.FAILED, error=error[:1000], claimed_until=None
        )
    )


_DONE = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("inbound_id"))
    .values(state=InboundState.DONE.value, error="", raw=b"", claimed_until=None)
)


def retry_later(s: Session, inbound_id: int, error: str, attempts: int, at: datetime) -> None:
    """A failed try: keep the message, try again at `at`."""
    s.execute(
        update(Inbound)
        .where(col(Inbound.id) == inbound_id)
        .values(error=error[:1000], attempts=attempts, next_attempt_at=at, claimed_until=None)
    )


def next_due(s: Session) -> datetime | None:
    """When the earliest message waiting for a retry is due."""
    return s.exec(
        select(Inbound.next_attempt_at)
        .where(
            and_(col(Inbound.state) == InboundState.NEW, col(Inbound.next_attempt_at).is_not(None))
        )
        .order_by(col(Inbound.next_attempt_at))
        .limit(1)
    ).first()


def listing(s: Session, failed_only: bool = False, limit: int | None = None) -> list[Inbound]:
    """Unfinished and parked messages (or only the parked ones), oldest first."""
    states = [InboundState.FAILED] if failed_only else [InboundState.NEW, InboundState.FAILED]
    query = select(Inbound).where(col(Inbound.state).in_(states)).order_by(col(Inbound.id))
    return list(s.exec(query.limit(limit) if limit else query))


def retry(s: Session, inbound_id: int) -> bool:
    """Put a parked (or waiting) message back in the queue now; False when there is none."""
    result = s.execute(
        update(Inbound)
        .where(
            col(Inbound.id) == inbound_id,
            col(Inbound.state).in_([InboundState.FAILED, InboundState.NEW]),
        )
        .values(
            state=InboundState.NEW,
            attempts=0,
            next_attempt_at=None,
            claimed_until=None,
            claimed_by="",
        )
    )
    return bool(getattr(result, "rowcount", 0))
