"""The daily maintenance run key: one row per day, so one instance of several runs it."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from listserv.store import rowcount
from listserv.store.outbound import COUNT_ROWS, insert_or_skip
from listserv.store.tables import MaintenanceRun


def start_run(s: Session, day: date, instance: str, now: datetime) -> bool:
    """True when this call took the day's run; False when another instance already has it."""
    stmt = insert_or_skip(s, MaintenanceRun).values(day=day, instance=instance, started_at=now)
    return rowcount(s.execute(stmt, execution_options=COUNT_ROWS)) == 1
