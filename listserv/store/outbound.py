"""The outbound queue: decorated messages and one durable delivery row per recipient."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, Table, any_, bindparam, func, literal, or_, update
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel, col, select

from listserv.states import UNSENT, CopyState, MemberStatus
from listserv.store import Store, rowcount
from listserv.store.tables import Delivery, Member, Outbound


@dataclass(frozen=True)
class Claimed:
    """A delivery row taken by a worker."""

    id: int
    outbound_id: int
    recipient: str
    token: str
    attempts: int
    created_at: datetime
    member_id: int | None


# SQLAlchemy keeps an INSERT's rowcount only when asked; psycopg would otherwise report -1.
COUNT_ROWS = {"preserve_rowcount": True}


def _insert(s: Session, table: type[SQLModel]) -> Any:
    dialect = s.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def insert_or_skip(s: Session, table: type[SQLModel]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for this store's dialect."""
    return _insert(s, table).on_conflict_do_nothing()


# Built once, run with parameters (issue 12: building them per post cost more than running them).
_OUTBOUNDS: Table = Outbound.__table__  # type: ignore[attr-defined]
_INSERT_OUTBOUND = sa_insert(_OUTBOUNDS).returning(_OUTBOUNDS.c.id)
_OUTBOUND_OF_POST = sa_select(_OUTBOUNDS).where(_OUTBOUNDS.c.post_id == bindparam("post_id"))


def add_outbound(
    s: Session, list_name: str, kind: str, raw: bytes, now: datetime, post_id: int | None = None
) -> Outbound:
    """Store a decorated message; a post gets exactly one outbound message. One Core INSERT
    (the ORM's add and flush cost more, issue 12); the row returned is not in the session."""
    s.flush()  # a Core statement does not autoflush: the session's changes go first
    conn = s.connection()
    if post_id is not None:
        existing = conn.execute(_OUTBOUND_OF_POST, {"post_id": post_id}).first()
        if existing:
            return Outbound.model_validate(existing._mapping)
    raw = raw.replace(b"\x00", b"")  # NUL is never valid in mail (RFC 5322); relays choke on it
    row = Outbound(list_name=list_name, kind=kind, raw=raw, created_at=now, post_id=post_id)
    row.id = conn.execute(_INSERT_OUTBOUND, row.model_dump(exclude={"id"})).scalar_one()
    return row


def queue_to_members(
    s: Session,
    outbound_id: int,
    list_name: str,
    deliveries: Sequence[str],
    now: datetime,
    *,
    field_in: Sequence[str] | None = None,
    field_not_in: Sequence[str] | None = None,
) -> int:
    """Queue one copy per active member in the given delivery modes, inside the database;
    field_in / field_not_in narrow it to members of (or not of) some fields (issue 13).

    One INSERT ... SELECT, so a 100,000-member list never passes through Python; the unique
    (outbound, recipient) key makes a repeated fan-out after a crash add nothing twice.
    """
    stmt = _fan_out(s.get_bind().dialect.name, field_in is not None, field_not_in is not None)
    params: dict[str, Any] = dict(
        outbound_id=outbound_id, list_name=list_name, deliveries=list(deliveries), now=now
    )
    if field_in is not None:
        params["field_in"] = list(field_in)
    if field_not_in is not None:
        params["field_not_in"] = list(field_not_in)
    return rowcount(s.connection().execute(stmt, params, execution_options=COUNT_ROWS))


@functools.cache
def _fan_out(dialect: str, field_in: bool, field_not_in: bool) -> Any:
    """queue_to_members' INSERT ... SELECT, built once per dialect and filter (issue 12)."""
    members = sa_select(
        bindparam("outbound_id", type_=Integer),
        col(Member.id),
        col(Member.address),
        col(Member.token),
        literal(CopyState.QUEUED.value),
        literal(0),
        bindparam("now", type_=DateTime),
        bindparam("now", type_=DateTime),
    ).where(
        col(Member.list_name) == bindparam("list_name"),
        col(Member.status) == MemberStatus.ACTIVE.value,
        col(Member.delivery).in_(bindparam("deliveries", expanding=True)),
    )
    if field_in:
        members = members.where(col(Member.field).in_(bindparam("field_in", expanding=True)))
    if field_not_in:
        members = members.where(col(Member.field).not_in(bindparam("field_not_in", expanding=True)))
    cols = [
        "outbound_id",
        "member_id",
        "recipient",
        "token",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
    ]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Delivery).from_select(cols, members).on_conflict_do_nothing()


def queue_to_addresses(
    s: Session, outbound_id: int, recipients: Iterable[tuple[str, str, int | None]], now: datetime
) -> int:
    """Queue copies to (address, token, member_id) triples; token '' means no per-member headers."""
    rows = [
        dict(
            outbound_id=outbound_id,
            recipient=addr,
            token=token,
            member_id=member_id,
            state=CopyState.QUEUED,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        for addr, token, member_id in recipients
    ]
    if not rows:
        return 0
    stmt = _insert(s, Delivery).values(rows).on_conflict_do_nothing()
    return rowcount(s.execute(stmt, execution_options=COUNT_ROWS))


def claim_deliveries(
    s: Session, now: datetime, lease: timedelta, limit: int, instance: str = ""
) -> list[Claimed]:
    """Atomically take up to limit due copies for instance; two workers never take the same row.

    On PostgreSQL the due rows are locked FOR UPDATE SKIP LOCKED, so instances on one database
    claim disjoint batches without waiting on each other."""
    return _run_claim(s, now, lease, limit, instance, None)


def claim_queued_after(
    s: Session, after_id: int, now: datetime, lease: timedelta, limit: int, instance: str
) -> list[Claimed]:
    """claim_deliveries for the copies queued after delivery row after_id only: those the
    calling writer job queued, when after_id is last_delivery_id() from its start."""
    return _run_claim(s, now, lease, limit, instance, after_id)


def _run_claim(
    s: Session, now: datetime, lease: timedelta, limit: int, instance: str, after: int | None
) -> list[Claimed]:
    stmt = _claim(s.get_bind().dialect.name, after=after is not None)
    params = {"now": now, "until": now + lease, "instance": instance, "limit": limit}
    if after is not None:
        params["after"] = after
    result: Any = s.connection().execute(stmt, params)  # Core: no ORM bookkeeping
    return sorted((Claimed(*row) for row in result), key=lambda c: c.id)


_LAST_DELIVERY = sa_select(func.max(col(Delivery.id)))


def last_delivery_id(s: Session) -> int:
    """The highest delivery row id so far (0 for none)."""
    return s.connection().execute(_LAST_DELIVERY).scalar() or 0


@functools.cache
def _claim(dialect: str, after: bool) -> Any:
    """claim_deliveries' UPDATE ... RETURNING, built once per dialect: building it per claim
    was most of the claim's CPU, and a claim follows every post (issue 12). after: only rows
    with an id above :after (claim_queued_after)."""
    now = bindparam("now", type_=DateTime)
    free = or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) < now)
    due = (
        select(col(Delivery.id))
        .where(col(Delivery.state).in_(UNSENT), col(Delivery.next_attempt_at) <= now, free)
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(bindparam("limit", type_=Integer))
    )
    if after:
        due = due.where(col(Delivery.id) > bindparam("after", type_=Integer))
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (
        update(Delivery)
        .where(col(Delivery.id).in_(due.scalar_subquery()), free)
        .values(
            state=CopyState.SENDING,
            claimed_until=bindparam("until", type_=DateTime),
            claimed_by=bindparam("instance"),
            attempts=col(Delivery.attempts) + 1,
        )
        .returning(
            col(Delivery.id),
            col(Delivery.outbound_id),
            col(Delivery.recipient),
            col(Delivery.token),
            col(Delivery.attempts),
            col(Delivery.created_at),
            col(Delivery.member_id),
        )
    )


def outbound_raw(s: Session, outbound_id: int) -> tuple[str, bytes] | None:
    """(list name, decorated bytes) of an outbound message: read once per message by delivery,
    with a statement built once (through the ORM it was ~half of loading a post, issue 12)."""
    row = s.connection().execute(_OUTBOUND_RAW, {"outbound_id": outbound_id}).first()
    return (row[0], row[1]) if row else None


_OUTBOUND_RAW = sa_select(_OUTBOUNDS.c.list_name, _OUTBOUNDS.c.raw).where(
    _OUTBOUNDS.c.id == bindparam("outbound_id")
)


IN_CHUNK = 512


def padded_chunks(ids: Sequence[int], size: int = IN_CHUNK) -> Iterator[list[int]]:
    """ids in chunks of at most size, each padded (repeating its last id) to a power of two.

    Each IN-list length is a new SQL text, and sqlite3 caches a prepared statement for each text
    (up to 128 per pooled connection, ~200 bytes per parameter). Flushes of ever-different
    lengths added ~14 MB to peak RSS in a 100,000-copy fan-out (bench/fanout.py: 100 -> 86 MB).
    Padded like this, there are only 10 shapes.

    >>> [len(c) for c in padded_chunks(list(range(1300)))], list(padded_chunks([1, 2, 3]))
    ([512, 512, 512], [[1, 2, 3, 3]])
    """
    for start in range(0, len(ids), size):
        chunk = list(ids[start : start + size])
        width = 1 << (len(chunk) - 1).bit_length()
        yield chunk + [chunk[-1]] * (width - len(chunk))


def outbound_list(s: Session, outbound_id: int) -> str | None:
    """The list an outbound message belongs to, without loading its body."""
    return s.exec(select(col(Outbound.list_name)).where(col(Outbound.id) == outbound_id)).first()


def _mark_sent_statement(ids: Any) -> Any:
    """The one UPDATE that records copies as sent, for the ids clause given (each path below
    binds it its own way)."""
    return (
        update(Delivery)
        .where(ids)
        .values(state=CopyState.SENT, claimed_until=None, last_error="", sent_at=bindparam("now"))
    )


# Built once: constructing the statement per group commit was most of its CPU (issue 12).
_MARK_SENT = _mark_sent_statement(col(Delivery.id).in_(bindparam("ids", expanding=True)))


def mark_sent(s: Session | Connection, ids: Sequence[int], now: datetime) -> None:
    """Record copies as sent; a plain Connection is accepted as the cheaper path for the group
    commit after each relay 250 (a Session costs ~3x the CPU per commit, bench/fanout.py)."""
    for chunk in padded_chunks(ids):
        s.execute(_MARK_SENT, {"ids": chunk, "now": now})


async def record_sent(store: Store, ids: Sequence[int]) -> None:
    """Delivery's group commit of sent marks, from the event loop: on PostgreSQL one statement
    on the store's async connection; on SQLite at once when the write lock is free, else on a
    thread. Never waits for the disk on SQLite (Store.core): a resent copy at worst."""
    if await store.write_async(lambda conn: mark_sent_async(conn, ids, datetime.now(UTC))):
        return
    if store.write_now(lambda db: mark_sent_now(db, ids, datetime.now(UTC))):
        return

    def on_a_thread() -> None:
        with store.core(flushed=False) as conn:
            mark_sent(conn, ids, datetime.now(UTC))

    await asyncio.to_thread(on_a_thread)


def mark_sent_now(db: Any, ids: Sequence[int], now: datetime) -> None:
    """mark_sent on a bare sqlite3 connection, inside a transaction the caller opened
    (Store.write_now): the same statement, without SQLAlchemy's execution around it, which was
    over half the CPU of a group commit (bench/fanout.py, issue 12)."""
    for chunk in padded_chunks(ids):
        sql, bind_now = _mark_sent_sqlite(len(chunk))
        db.execute(sql, (CopyState.SENT.value, None, "", bind_now(now), *chunk))


@functools.cache
def _mark_sent_sqlite(width: int) -> tuple[str, Any]:
    """The statement compiled for SQLite with width ids, and sent_at's bind processor."""
    dialect = sqlite.dialect()
    ids = col(Delivery.id).in_([bindparam(f"id{k}") for k in range(width)])
    compiled = _mark_sent_statement(ids).compile(dialect=dialect)
    order = ["state", "claimed_until", "last_error", "now", *(f"id{k}" for k in range(width))]
    assert compiled.positiontup == order, compiled.positiontup  # the order mark_sent_now binds
    return str(compiled), _sent_at_binder(dialect)


async def mark_sent_async(conn: Any, ids: Sequence[int], now: datetime) -> None:
    """mark_sent on an async psycopg connection in autocommit mode (Store.write_async): one
    statement and one round trip, in the event loop (a thread per group commit, and BEGIN,
    UPDATE, COMMIT through SQLAlchemy, cost 2.4x SQLite's CPU per copy, issue 12)."""
    sql, bind_now = _mark_sent_postgresql()
    params = {"state": CopyState.SENT.value, "claimed_until": None, "last_error": ""}
    await conn.execute(sql, {**params, "now": bind_now(now), "ids": list(ids)})


@functools.cache
def _mark_sent_postgresql() -> tuple[str, Any]:
    """The statement compiled for psycopg with the ids as one array, and sent_at's binder."""
    dialect = postgresql.psycopg.dialect()
    ids = col(Delivery.id) == any_(bindparam("ids", type_=ARRAY(Integer)))
    return str(_mark_sent_statement(ids).compile(dialect=dialect)), _sent_at_binder(dialect)


def _sent_at_binder(dialect: Any) -> Any:
    sent_at = Delivery.__table__.c.sent_at.type  # type: ignore[attr-defined]
    return sent_at.dialect_impl(dialect).bind_processor(dialect)


def release(s: Session, ids: Sequence[int], instance: str) -> None:
    """Give back copies instance claimed and never tried: due at once, attempt not counted.
    A copy another instance has claimed since (our lease ran out) is left to it."""
    for chunk in padded_chunks(ids):
        s.execute(
            update(Delivery)
            .where(
                col(Delivery.id).in_(chunk),
                col(Delivery.state) == CopyState.SENDING,
                col(Delivery.claimed_by) == instance,
            )
            .values(
                state=CopyState.QUEUED,
                claimed_until=None,
                attempts=col(Delivery.attempts) - 1,
            )
        )


def claimants(s: Session, now: datetime) -> list[str]:
    """The instance ids holding a live lease on some copy."""
    q = (
        select(col(Delivery.claimed_by))
        .where(col(Delivery.state) == CopyState.SENDING, col(Delivery.claimed_until) >= now)
        .distinct()
    )
    return list(s.exec(q))


def take_back(s: Session, instances: Sequence[str]) -> int:
    """End the leases of copies claimed by these (dead) instances: they are due again at once."""
    if not instances:
        return 0
    result = s.execute(
        update(Delivery)
        .where(
            col(Delivery.state) == CopyState.SENDING,
            col(Delivery.claimed_by).in_(list(instances)),
        )
        .values(state=CopyState.QUEUED, claimed_until=None)
    )
    return rowcount(result)


def defer(s: Session, delivery_id: int, error: str, next_at: datetime) -> None:
    s.execute(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id)
        .values(
            state=CopyState.QUEUED,
            next_attempt_at=next_at,
            claimed_until=None,
            last_error=error[:500],
        )
    )


def fail(s: Session, delivery_id: int, error: str) -> None:
    s.execute(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id)
        .values(state=CopyState.FAILED, claimed_until=None, last_error=error[:500])
    )


def pending(s: Session, limit: int = 1000) -> list[Delivery]:
    """Copies not yet sent (waiting, in flight or deferred), oldest first."""
    q = (
        select(Delivery)
        .where(col(Delivery.state).in_(UNSENT))
        .order_by(col(Delivery.id))
        .limit(limit)
    )
    return list(s.exec(q))


def counts_by_state(s: Session) -> dict[str, int]:
    return {
        state: n
        for state, n in s.exec(
            select(col(Delivery.state), func.count()).group_by(col(Delivery.state))
        )
    }


def next_due(s: Session) -> datetime | None:
    """When the earliest waiting copy is due, to let an idle worker sleep until then."""
    return s.exec(
        select(func.min(col(Delivery.next_attempt_at))).where(col(Delivery.state).in_(UNSENT))
    ).first()


def copies(
    s: Session, states: Sequence[str], page: int = 1000, after_id: int = 0
) -> Iterator[Delivery]:
    """Every copy in the given states, oldest first, read a page at a time (no row limit)."""
    while True:
        q = (
            select(Delivery)
            .where(col(Delivery.state).in_(list(states)), col(Delivery.id) > after_id)
            .order_by(col(Delivery.id))
            .limit(page)
        )
        rows = list(s.exec(q))
        yield from rows
        if len(rows) < page:
            return
        after_id = rows[-1].id or after_id


def sent_to(s: Session, list_name: str, address: str, since: datetime) -> bool:
    """Whether a copy of this list's mail was sent to address since a time: only such a copy
    can bounce (a forged bounce for someone we sent nothing to counts for nothing; issue 10)."""
    q = (
        select(col(Delivery.id))
        .join(Outbound, col(Outbound.id) == col(Delivery.outbound_id))
        .where(
            col(Delivery.recipient) == address,
            col(Delivery.state) == CopyState.SENT,
            col(Delivery.sent_at) >= since,
            col(Outbound.list_name) == list_name,
        )
        .limit(1)
    )
    return s.exec(q).first() is not None
