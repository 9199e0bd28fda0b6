"""SQLModel tables: members, posts, the inbound and outbound queues, tokens, events, digest runs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class ListState(SQLModel, table=True):
    """A list as the store knows it: when it was first seen (digest periods start there)."""

    __tablename__ = "list_state"
    name: str = Field(primary_key=True)
    first_seen: datetime


class Member(SQLModel, table=True):
    """One address on one list."""

    __tablename__ = "member"
    __table_args__ = (
        UniqueConstraint("list_name", "address"),
        Index("ix_member_list_status_delivery", "list_name", "status", "delivery"),
    )
    id: int | None = Field(default=None, primary_key=True)
    list_name: str
    address: str
    name: str = ""
    status: str = "pending"  # pending | active | disabled | left
    delivery: str = "regular"  # regular | digest | alumni
    token: str = Field(unique=True)  # the member's own unsubscribe token
    created_at: datetime
    joined_at: datetime | None = None
    left_at: datetime | None = None
    left_reason: str = ""
    bounce_score: float = 0.0
    last_bounce_on: date | None = None
    disabled_at: datetime | None = None
    probes_sent: int = 0
    last_probe_at: datetime | None = None
    field: str = ""  # the member's field of work, one of the list's fields; '' = none chosen


class Inbound(SQLModel, table=True):
    """A message as accepted over SMTP, kept until it has been handled (SPEC 6: 250 after commit)."""

    __tablename__ = "inbound"
    __table_args__ = (Index("ix_inbound_state", "state", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime
    mail_from: str
    rcpts: str  # JSON list of recipient addresses
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = "new"  # new | done | failed (parked after its last try, with the reason)
    claimed_until: datetime | None = None
    claimed_by: str = ""  # the instance id of the process holding the claim
    attempts: int = 0  # failed tries so far
    next_attempt_at: datetime | None = None  # after a failure: not before this
    error: str = ""  # the last failure; for a parked message, why it was parked


class Post(SQLModel, table=True):
    """A message sent to a list address, with the moderation decision."""

    __tablename__ = "post"
    __table_args__ = (
        Index("ix_post_list_status_time", "list_name", "status", "received_at"),
        Index("ix_post_sender_msgid", "list_name", "sender", "message_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    list_name: str
    message_id: str = ""
    sender: str = ""
    from_header: str = ""
    subject: str = ""
    received_at: datetime
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = "accepted"  # accepted | held | rejected | discarded
    reason: str = ""
    topic: str | None = None  # hiring | layoff | None
    fields: str = ""  # the fields the post's own words name, one per line (issue 13)
    thread_key: str = ""
    in_reply_to: str = ""
    distributed_at: datetime | None = None


class Outbound(SQLModel, table=True):
    """A message to send: decorated once, copied per recipient by the delivery workers."""

    __tablename__ = "outbound"
    __table_args__ = (UniqueConstraint("post_id"),)
    id: int | None = Field(default=None, primary_key=True)
    list_name: str
    kind: str  # post | digest | notice
    post_id: int | None = None
    created_at: datetime
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Delivery(SQLModel, table=True):
    """One copy of one outbound message to one recipient: the durable delivery queue."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("outbound_id", "recipient"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
        Index("ix_delivery_recipient", "recipient", "state"),  # did a bounce's copy go out?
    )
    id: int | None = Field(default=None, primary_key=True)
    outbound_id: int = Field(index=True)
    member_id: int | None = None
    recipient: str
    token: str = ""  # member token for the per-member List-Unsubscribe; '' for notices
    state: str = "queued"  # queued | sending | sent | failed
    attempts: int = 0
    created_at: datetime
    next_attempt_at: datetime
    claimed_until: datetime | None = None
    claimed_by: str = ""  # the instance id (Server.instance_id) of the last claim
    last_error: str = ""
    sent_at: datetime | None = None


class Token(SQLModel, table=True):
    """A single-use confirmation token bound to a list, an address and an action."""

    __tablename__ = "token"
    token: str = Field(primary_key=True)
    list_name: str
    address: str
    action: str  # join | leave | approve-join
    payload: str = ""
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class Event(SQLModel, table=True):
    """Every join, leave, mode change, bounce and hold, with its reason."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_list_kind_at", "list_name", "kind", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    list_name: str
    address: str = ""
    kind: str
    reason: str = ""
    at: datetime


class DigestRun(SQLModel, table=True):
    """One digest of one list and kind for one period; the unique key makes it exactly-once."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("list_name", "kind", "period_start"),)
    id: int | None = Field(default=None, primary_key=True)
    list_name: str
    kind: str  # regular | alumni
    period_start: datetime
    period_end: datetime
    created_at: datetime
    posts: int = 0
    outbound_id: int | None = None


class MaintenanceRun(SQLModel, table=True):
    """One daily bounce-maintenance run; the day key makes it once across instances."""

    __tablename__ = "maintenance_run"
    day: date = Field(primary_key=True)
    instance: str = ""
    started_at: datetime


class ReplyCount(SQLModel, table=True):
    """Auto-replies sent to one address on one day (SPEC 5: a daily cap)."""

    __tablename__ = "reply_count"
    address: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    count: int = 0
