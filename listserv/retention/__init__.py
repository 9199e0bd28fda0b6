"""Retention: why is a member leaving (found_work), what is a post about (topics), and is a
post to the list an unsubscribe request (unsubscribe). Pure: text in, values out."""

from listserv.retention.found_work import LeaveOutcome, LeaveVerdict, classify_leave
from listserv.retention.topics import classify_topic
from listserv.retention.unsubscribe import is_unsubscribe_request

__all__ = [
    "LeaveOutcome",
    "LeaveVerdict",
    "classify_leave",
    "classify_topic",
    "is_unsubscribe_request",
]
