"""What a leave request says: found work, unsure or other (RETENTION.md), and why."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LeaveOutcome(StrEnum):
    FOUND_WORK = "found_work"
    UNSURE = "unsure"  # may mean work was found: asked, never switched silently
    OTHER = "other"


@dataclass(frozen=True)
class LeaveVerdict:
    """What a leave request says (RETENTION.md): found work, unsure, or other; and the words
    that decided it, kept on the member's event."""

    outcome: LeaveOutcome
    phrase: str | None

    @property
    def found_work(self) -> bool:
        return self.outcome == LeaveOutcome.FOUND_WORK

    @property
    def unsure(self) -> bool:
        return self.outcome == LeaveOutcome.UNSURE
