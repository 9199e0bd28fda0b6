"""The states a member, post, copy, inbound message and token can be in, as StrEnums."""

from __future__ import annotations

from enum import StrEnum


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DISABLED = "disabled"  # delivery paused because mail to the member bounced
    LEFT = "left"


# Members who still belong to the list (a paused member is still a member).
LIVE = (MemberStatus.ACTIVE, MemberStatus.DISABLED)


class Delivery(StrEnum):
    REGULAR = "regular"
    DIGEST = "digest"
    ALUMNI = "alumni"


class DigestKind(StrEnum):
    REGULAR = "regular"
    ALUMNI = "alumni"

    @property
    def audience(self) -> Delivery:
        """Which delivery mode gets this digest."""
        return Delivery.DIGEST if self is DigestKind.REGULAR else Delivery.ALUMNI


class PostStatus(StrEnum):
    ACCEPTED = "accepted"
    HELD = "held"
    REJECTED = "rejected"
    DISCARDED = "discarded"


class CopyState(StrEnum):
    """One outbound copy to one recipient."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


UNSENT = (CopyState.QUEUED, CopyState.SENDING)


class InboundState(StrEnum):
    NEW = "new"
    DONE = "done"
    FAILED = "failed"


class TokenAction(StrEnum):
    JOIN = "join"
    LEAVE = "leave"
    ALUMNI = "alumni"
    APPROVE_JOIN = "approve-join"
    ANNOUNCE = "announce"  # after 'back': one post to the list through NAME-announce+TOKEN
    UNSUBSCRIBED = "unsubscribed"  # a left member's old unsubscribe token, spent
    CHANGE = "change"  # a membership change asked for by mail not known to be the member's


class EventKind(StrEnum):
    """What the event log records (the alumni pulse and stats count these)."""

    JOIN = "join"
    LEAVE = "leave"
    JOB_LEAVE = "job-leave"  # a leave request that said the member found work
    UNSURE_LEAVE = "unsure-leave"  # a leave request that may mean work was found
    OTHER_LEAVE = "other-leave"  # a leave request for any other reason
    DISABLED = "disabled"
    BOUNCE = "bounce"
    BOUNCE_TEMPORARY = "bounce-temporary"
    ALUMNI_LEFT = "alumni-left"  # logged beside LEAVE when the leaver was an alumnus
    BACK = "back"  # an alumni or digest member said they are looking again (a layoff signal)

    @staticmethod
    def mode(delivery: str) -> str:
        """The event kind of a switch to a delivery mode: 'mode-alumni'."""
        return f"mode-{delivery}"
