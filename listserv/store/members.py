"""Member queries: find, add, change status and delivery mode, stream for fan-out."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session, SQLModel, col, select

from listserv.states import LIVE, Delivery, EventKind, MemberStatus, TokenAction
from listserv.store import rowcount
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


def note_list(s: Session, name: str, now: datetime) -> None:
    """ensure_list without loading the row: one INSERT .. ON CONFLICT DO NOTHING (a post's
    path needs only that the row exists; the ORM get and flush cost more, issue 12)."""
    conn = s.connection()
    conn.execute(_note_list(conn.dialect.name), {"name": name, "first_seen": now})


@functools.cache
def _note_list(dialect: str) -> Any:
    """The statement note_list runs, built once per dialect."""
    table: Table = ListState.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()


def member_status(s: Session, list_name: str, address: str) -> str | None:
    """The member's status, None when not a member; one Core query, no ORM object."""
    s.flush()  # a Core statement does not autoflush: the session's changes go first
    return s.connection().scalar(_STATUS, {"list_name": list_name, "address": address})


_MEMBERS: Table = Member.__table__  # type: ignore[attr-defined]
_STATUS = sa_select(_MEMBERS.c.status).where(
    _MEMBERS.c.list_name == bindparam("list_name"), _MEMBERS.c.address == bindparam("address")
)


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
    member.last_bounce_on = None  # with the score: a bounce the same day counts again
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
    if member.delivery == Delivery.ALUMNI:  # stats tell alumni who left fully apart (issue 13)
        log_event(s, member.list_name, member.address, EventKind.ALUMNI_LEFT, reason, now)


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


def has_event(s: Session, list_name: str, address: str, kind: str, since: datetime) -> bool:
    """True when the member has an event of this kind since a time."""
    q = select(col(Event.id)).where(
        col(Event.list_name) == list_name,
        col(Event.address) == address,
        col(Event.kind) == kind,
        col(Event.at) >= since,
    )
    return s.exec(q).first() is not None


def members_by_address(s: Session, list_name: str, addresses: Iterable[str]) -> list[Member]:
    """The list's members with these addresses (any status), in no particular order."""
    wanted = list(addresses)
    found: list[Member] = []
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        q = select(Member).where(col(Member.list_name) == list_name, col(Member.address).in_(chunk))
        found.extend(s.exec(q))
    return found


# ---------------------------------------------------------------- bulk import

_IN_CHUNK = 1000  # addresses per IN (...): well under SQLite's 32,766 bound parameters
IMPORTED = "imported"  # the reason on an imported member's join event
_MEMBER = SQLModel.metadata.tables["member"]  # the Core table: executemany, no ORM objects
_M = _MEMBER.c


class ImportedRow(Protocol):
    """What import_batch needs of a row read from an export (listserv.imports.ImportRow)."""

    @property
    def address(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def delivery(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def source_mode(self) -> str: ...
    @property
    def field(self) -> str: ...


@dataclass
class ImportResult:
    """The addresses of one batch by what became of them."""

    added: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


def import_batch(
    s: Session, list_name: str, rows: Sequence[ImportedRow], now: datetime
) -> ImportResult:
    """Import rows in a few statements, with the rules of membership.add_by_admin.

    An address already live (active or disabled) is "already there" and left alone, as is a
    second row for the same address. A new address is inserted with a fresh token; a former
    (left or pending) member is re-activated and keeps theirs. Each of these gets a 'join'
    event with reason "imported". A row whose status is left is only recorded for an address
    we don't know yet (status left, a 'leave' event saying why), so it is never mailed.
    Meant for batches of hundreds to a few thousand rows, one transaction each.
    """
    first: dict[str, ImportedRow] = {}
    result = ImportResult()
    for row in rows:
        if row.address in first:
            result.already.append(row.address)
        else:
            first[row.address] = row
    existing = _statuses(s, list_name, list(first))
    new = [r for a, r in first.items() if a not in existing]
    former = [
        r
        for a, r in first.items()
        if a in existing and existing[a] not in LIVE and r.status != MemberStatus.LEFT
    ]
    conn = s.connection()
    stamp = _db_time(conn, now)
    inserted = _insert_new(conn, list_name, new, stamp)
    if former:
        conn.execute(_REACTIVATE, [_reactivation(list_name, r, now) for r in former])
    result.added = [r.address for r in new if r.address in inserted]
    result.reactivated = [r.address for r in former]
    done = {*result.added, *result.reactivated}
    result.already += [a for a in first if a not in done]
    events = [_event(list_name, first[a], stamp) for a in (*result.added, *result.reactivated)]
    if events:
        _insert_many(conn, "event", _EVENT_COLUMNS, events)
    return result


def _statuses(s: Session, list_name: str, addresses: list[str]) -> dict[str, str]:
    """address -> status of those of addresses already on the list."""
    conn = s.connection()
    if conn.dialect.name == "postgresql":  # a join, not IN (1,000 params): the planner's stats
        sql = (  # lag a growing table, and a seq scan per IN list is quadratic
            "SELECT m.address, m.status FROM unnest(%s::text[]) AS a(address) "
            "JOIN member m ON m.list_name = %s AND m.address = a.address"
        )
        return {a: status for a, status in conn.exec_driver_sql(sql, (addresses, list_name))}
    found: dict[str, str] = {}
    for start in range(0, len(addresses), _IN_CHUNK):
        chunk = addresses[start : start + _IN_CHUNK]
        q = select(col(Member.address), col(Member.status)).where(
            col(Member.list_name) == list_name, col(Member.address).in_(chunk)
        )
        found.update(s.exec(q).all())
    return found


def _left_reason(row: ImportedRow) -> str:
    return f"imported as {row.source_mode}"[:500]


# The two big inserts go straight to the driver's executemany with values converted once per
# batch: SQLAlchemy's per-value processing costs more than SQLite's or psycopg's own insert.
_MEMBER_COLUMNS = (
    "list_name",
    "address",
    "name",
    "status",
    "delivery",
    "token",
    "created_at",
    "joined_at",
    "left_at",
    "left_reason",
    "bounce_score",
    "disabled_at",
    "probes_sent",
    "field",
)
_EVENT_COLUMNS = ("list_name", "address", "kind", "reason", "at")


def _db_time(conn: Connection, now: datetime) -> Any:
    """now as the driver gets it for our DateTime columns (SQLite: SQLAlchemy's text form)."""
    processor = _M.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return processor(now) if processor else now


def _insert_sql(conn: Connection, table: str, columns: tuple[str, ...], conflict: str = "") -> str:
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"bulk import needs SQLite or PostgreSQL, not {dialect}")
    marks = ", ".join(["?" if dialect == "sqlite" else "%s"] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){conflict}"


def _insert_new(conn: Connection, list_name: str, rows: list[ImportedRow], stamp: Any) -> set[str]:
    """Insert rows, skipping any address that appeared meanwhile; the addresses inserted."""
    if not rows:
        return set()
    tokens = {r.address: new_token() for r in rows}
    values = []
    for r in rows:
        live = r.status != MemberStatus.LEFT
        values.append(
            (list_name, r.address, r.name, r.status, r.delivery, tokens[r.address], stamp)
            + ((stamp, None, "") if live else (None, stamp, _left_reason(r)))
            + (0.0, None, 0)  # disabled_at stays empty: bounces did not disable them
            + (r.field,)
        )
    if conn.dialect.name == "postgresql":  # one statement a batch; RETURNING says which went in
        sql = _unnest_sql("member", _MEMBER_COLUMNS, _SKIP_KNOWN + " RETURNING address")
        return set(conn.exec_driver_sql(sql, _columns(values)).scalars())
    result = conn.exec_driver_sql(_insert_sql(conn, "member", _MEMBER_COLUMNS, _SKIP_KNOWN), values)
    if rowcount(result) == len(rows):
        return set(tokens)
    # An address appeared between our SELECT and INSERT: ours are the ones with our tokens.
    q = select(_M.address, _M.token).where(_M.list_name == list_name, _M.address.in_(list(tokens)))
    return {a for a, token in conn.execute(q) if tokens[a] == token}


def _insert_many(
    conn: Connection, table: str, columns: tuple[str, ...], values: list[tuple[Any, ...]]
) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_unnest_sql(table, columns), _columns(values))
    else:
        conn.exec_driver_sql(_insert_sql(conn, table, columns), values)


_SKIP_KNOWN = " ON CONFLICT (list_name, address) DO NOTHING"
_PG_TYPES = {
    "created_at": "timestamptz",
    "joined_at": "timestamptz",
    "left_at": "timestamptz",
    "disabled_at": "timestamptz",
    "at": "timestamptz",
    "bounce_score": "float8",
    "probes_sent": "int4",
}


def _unnest_sql(table: str, columns: tuple[str, ...], tail: str = "") -> str:
    """PostgreSQL: INSERT ... SELECT FROM unnest(one array a column): a whole batch at once."""
    arrays = ", ".join(f"%s::{_PG_TYPES.get(c, 'text')}[]" for c in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){tail}"


def _columns(values: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    return tuple(list(column) for column in zip(*values, strict=True))


_REACTIVATE = (
    update(_MEMBER)
    .where(
        _M.list_name == bindparam("b_list"),
        _M.address == bindparam("b_address"),
        _M.status.not_in(list(LIVE)),
    )
    .values(
        status=bindparam("b_status"),
        delivery=bindparam("b_delivery"),
        name=func.coalesce(func.nullif(bindparam("b_name"), ""), _M.name),
        field=func.coalesce(func.nullif(bindparam("b_field"), ""), _M.field),
        joined_at=bindparam("b_joined"),
        left_at=None,
        left_reason="",
        disabled_at=None,  # as for new rows: bounces did not disable them
        bounce_score=0.0,
        last_bounce_on=None,
        probes_sent=0,
        last_probe_at=None,
    )
)


def _reactivation(list_name: str, r: ImportedRow, now: datetime) -> dict[str, Any]:
    return {
        "b_list": list_name,
        "b_address": r.address,
        "b_status": r.status,
        "b_delivery": r.delivery,
        "b_name": r.name,
        "b_field": r.field,
        "b_joined": now,
    }


def _event(list_name: str, r: ImportedRow, stamp: Any) -> tuple[Any, ...]:
    if r.status == MemberStatus.LEFT:
        return (list_name, r.address, str(EventKind.LEAVE), _left_reason(r), stamp)
    return (list_name, r.address, str(EventKind.JOIN), IMPORTED, stamp)


def set_field(s: Session, member: Member, field: str) -> None:
    """The member's field of work ('' clears it)."""
    member.field = field
    s.add(member)


def fields_in_use(s: Session, list_name: str, delivery: str) -> list[str]:
    """The fields active members of one delivery mode chose ('' not included)."""
    q = (
        select(col(Member.field))
        .where(
            col(Member.list_name) == list_name,
            col(Member.status) == MemberStatus.ACTIVE,
            col(Member.delivery) == delivery,
            col(Member.field) != "",
        )
        .distinct()
    )
    return list(s.exec(q))
