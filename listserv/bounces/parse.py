"""Pure bounce parsing: who failed in a DSN or NDR, and does a message look like one at all.

flufl.bounce does the heavy lifting (RFC 3464 DSNs and a long tail of
non-standard formats). Only when it finds nobody do we try our own fallbacks:

- RFC 6533 ``message/global-delivery-status`` parts, which Postfix sends for
  SMTPUTF8 mail and flufl.bounce does not read (tests/data/bounces/postfix_smtputf8.eml);
- the sentences modern Microsoft and Gmail NDRs put in their text part, for
  the copies that arrive without their machine-readable part.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message

from flufl.bounce import all_failures

from listserv.addresses import is_valid_address, normalise, sender_address, verp_decode
from listserv.message import decode_text

log = logging.getLogger("listserv.bounces.parse")

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
# Parts carrying the returned original: never mine them for failing addresses.
RETURNED_TYPES = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
)

_ADDR = r"<?(?P<addr>[^\s<>@]+@[^\s<>@]+)>?"
# (pattern, permanent?) for the human-readable part of NDRs.
_SENTENCES = (
    (re.compile(rf"Your message to {_ADDR} couldn't be delivered", re.I), True),  # Microsoft 365
    (re.compile(rf"Your message wasn't delivered to {_ADDR} because", re.I), True),  # Gmail
    (re.compile(rf"temporary problem delivering your message to {_ADDR}", re.I), False),
)
# Gmail's "does not exist" text names nobody; the address sits in the same paragraph.
_NO_SUCH_ACCOUNT = re.compile(r"The email account that you tried to reach does not exist", re.I)
_ANGLED = re.compile(r"<([^\s<>@]+@[^\s<>@]+)>")

_REPORT_TYPES = ("delivery-status", "global-delivery-status")
_BOUNCE_LOCALPARTS = {"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", "mail-daemon"}
_BOUNCE_SUBJECT = re.compile(
    r"\s*(undeliver(ed|able)\b|delivery status notification|mail delivery (failed|failure)"
    r"|failure notice|returned mail\b|delivery failure|delayed mail\b|warning: message .* delayed"
    r"|mail system error|non-?delivery|delivery (has )?failed|message not delivered"
    r"|could not be delivered|delivery incomplete)",
    re.I,
)


@dataclass(frozen=True)
class BounceReport:
    """The normalised addresses a bounce reports as failing for good or for now."""

    permanent: frozenset[str] = frozenset()
    temporary: frozenset[str] = frozenset()

    @property
    def addresses(self) -> frozenset[str]:
        """Every address the bounce names, permanent or temporary."""
        return self.permanent | self.temporary


def parse_bounce(msg: EmailMessage) -> BounceReport:
    """The failing recipients of a DSN/NDR; an empty report when it names none. Never raises.

    Temporary means a 'delayed' DSN (4.x.x, still being retried); permanent means the MTA
    gave up. An address reported both ways counts as permanent.
    """
    temporary, permanent = _flufl(msg)
    if not (temporary or permanent):
        temporary, permanent = _fallbacks(msg)
    perm = frozenset(_clean(permanent))
    return BounceReport(permanent=perm, temporary=frozenset(_clean(temporary)) - perm)


def verp_member(detail: str) -> str | None:
    """The member address in the '+ENCODED' part of NAME-bounces+ENCODED@domain."""
    return verp_decode(detail)


def is_bounce_like(msg: Message) -> bool:
    """True when a message looks like a DSN/NDR, so it must never get an auto-reply.

    Signals: a delivery-status report, X-Failed-Recipients, a null Return-Path, a
    MAILER-DAEMON/postmaster/MicrosoftExchange... sender, or a typical bounce Subject.
    """
    try:
        if msg.get_content_type() == "multipart/report":
            if str(msg.get_param("report-type", "")).lower() in _REPORT_TYPES:
                return True
        if _raw(msg, "x-failed-recipients") or _raw(msg, "return-path").strip() == "<>":
            return True
        sender = sender_address(_raw(msg, "from")) or ""
        local = sender.partition("@")[0]
        if local in _BOUNCE_LOCALPARTS or local.startswith("microsoftexchange"):
            return True
        if _BOUNCE_SUBJECT.match(_subject(msg)):
            return True
        return any(part.get_content_type() in DSN_TYPES for part in msg.walk())
    except Exception:  # too broken to read: err on the side of never auto-replying
        log.warning("is_bounce_like could not read %s", _raw(msg, "message-id"), exc_info=True)
        return True


def _flufl(msg: Message) -> tuple[set[str], set[str]]:
    # flufl.bounce re-raises whatever its detectors raise; a malformed bounce must not crash us.
    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        log.warning("flufl.bounce failed on message %s", _raw(msg, "message-id"), exc_info=True)
        return set(), set()
    return {_text(a) for a in temporary}, {_text(a) for a in permanent}


def _fallbacks(msg: Message) -> tuple[set[str], set[str]]:
    temporary: set[str] = set()
    permanent: set[str] = set()
    try:
        for part in _own_parts(msg):
            ctype = part.get_content_type()
            if ctype in DSN_TYPES:
                _read_dsn(_part_text(part), temporary, permanent)
            elif ctype == "text/plain":
                _read_sentences(_part_text(part), temporary, permanent)
    except Exception:
        log.warning("bounce fallbacks failed on message %s", _raw(msg, "message-id"), exc_info=True)
    return temporary, permanent


def _read_dsn(text: str, temporary: set[str], permanent: set[str]) -> None:
    """Per-recipient blocks of RFC 3464/6533 fields; Original-Recipient wins, as in flufl."""
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields = dict(_fields(block))
        recipient = fields.get("original-recipient") or fields.get("final-recipient") or ""
        addr_type, _, addr = recipient.partition(";")
        if not addr or addr_type.strip().lower() not in ("rfc822", "utf-8"):
            addr = fields.get("final-recipient", "").partition(";")[2]
        addr = addr.strip()
        if not addr:
            continue
        action = fields.get("action", "").lower()
        status = fields.get("status", "").strip()
        if action.startswith(("failed", "error")) or (not action and status.startswith("5")):
            permanent.add(addr)
        elif action.startswith("delayed") or (not action and status.startswith("4")):
            temporary.add(addr)


def _fields(block: str) -> Iterator[tuple[str, str]]:
    unfolded = re.sub(r"\n[ \t]+", " ", block)
    for line in unfolded.split("\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip():
            yield name.strip().lower(), value.strip()


def _read_sentences(text: str, temporary: set[str], permanent: set[str]) -> None:
    for pattern, is_permanent in _SENTENCES:
        for match in pattern.finditer(text):
            addr = match.group("addr").rstrip(".,;:")  # the sentence's own full stop
            (permanent if is_permanent else temporary).add(addr)
    for paragraph in re.split(r"\n\s*\n", text):
        if _NO_SUCH_ACCOUNT.search(paragraph):
            permanent.update(_ANGLED.findall(paragraph))


def _own_parts(msg: Message) -> Iterator[Message]:
    """Leaf parts written by the reporting MTA, skipping any returned original."""
    ctype = msg.get_content_type()
    if ctype in RETURNED_TYPES:
        return
    if ctype in DSN_TYPES or not msg.is_multipart():
        yield msg
        return
    for sub in msg.get_payload():
        if isinstance(sub, Message):
            yield from _own_parts(sub)


def _part_text(part: Message) -> str:
    """A part's text however the parser stored it (DSN parts become header blocks)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(sub.as_string() for sub in payload if isinstance(sub, Message))
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return str(payload)
    return _text(raw, part.get_content_charset())


def _text(value: bytes | str, charset: str | None = None) -> str:
    return value if isinstance(value, str) else decode_text(value, charset)


def _raw(msg: Message, name: str) -> str:
    """A header's unparsed value ('' when absent); never trips over a malformed header."""
    for key, value in msg.raw_items():
        if key.lower() == name:
            return str(value)
    return ""


def _subject(msg: Message) -> str:
    """The decoded Subject (Exchange encodes it), or the raw one if it will not decode."""
    try:
        return str(msg.get("subject", ""))
    except Exception:
        return _raw(msg, "subject")


def _clean(addresses: set[str]) -> Iterator[str]:
    for addr in addresses:
        addr = normalise(addr)
        if is_valid_address(addr):
            yield addr
