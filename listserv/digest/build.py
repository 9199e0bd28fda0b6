"""Pure digest builders: the regular digest (MIME or RFC 1153) and the alumni update."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from email import message_from_bytes
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP, default
from email.utils import format_datetime, make_msgid, parseaddr
from typing import cast

from listserv.addresses import list_address
from listserv.config import ListConfig
from listserv.digest.pulse import FIELD_PULSE, PeriodCounts, pulse_lines
from listserv.message import first_text, readable
from listserv.render import render_text
from listserv.states import DigestKind
from listserv.text import own_lines, strip_markers

# Embedded posts keep their own header folding (they go out unchanged); our headers fold as usual.
POLICY = SMTP.clone(refold_source="none")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
EXCERPT_CHARS = 200
# RFC 1153: keep these headers of each enclosed message, in this order, and drop the rest.
RFC1153_HEADERS = ("Date", "From", "To", "Cc", "Subject", "Message-ID", "Keywords")
PERIOD_WORDS = {  # (now, before, the six-period trend)
    "Daily": ("today", "the day before", "last six days"),
    "Weekly": ("this week", "last week", "last six weeks"),
    "Monthly": ("this month", "last month", "last six months"),
}


@dataclass(frozen=True)
class DigestPost:
    raw: bytes  # the post as received (RFC 5322 bytes)
    sender: str  # the From header value as received
    subject: str  # decoded subject without the list prefix
    received_at: datetime  # aware UTC
    message_id: str  # '<...>'
    thread_key: str  # Message-ID of the thread's first post
    topic: str | None  # 'hiring' | 'layoff' | None
    fields: tuple[str, ...] = ()  # the fields the post's own words name


@dataclass(frozen=True)
class Highlight:
    subject: str
    replies: int
    excerpt: str  # <= EXCERPT_CHARS, addresses, phone numbers and posters' names removed


_SINGLE = re.compile(r"^\w+$")


def cadence_word(cron: str) -> str:
    """'Daily', 'Weekly' or 'Monthly' for a once-a-day/week/month cron string; '' otherwise.

    >>> cadence_word("0 8 * * mon"), cadence_word("0 8 1 * *"), cadence_word("*/5 * * * *")
    ('Weekly', 'Monthly', '')
    """
    fields = cron.split()
    if len(fields) != 5 or not all(_SINGLE.match(f) for f in fields[:2]) or fields[3] != "*":
        return ""
    dom, dow = fields[2], fields[4]
    if dom == "*" and dow == "*":
        return "Daily"
    if dom == "*" and _SINGLE.match(dow):
        return "Weekly"
    if dow == "*" and _SINGLE.match(dom):
        return "Monthly"
    return ""


def digest_subject(
    lst: ListConfig,
    kind: str,
    period_end: datetime,
    count: int,
    tz: tzinfo,
    period_start: datetime | None = None,
) -> str:
    """'[networking] Weekly digest, 23 Nov 2026 (12 messages)' or an alumni update's subject."""
    if kind == DigestKind.REGULAR:
        word = cadence_word(lst.digest.schedule)
        text = f"{word} digest" if word else "Digest"
        text = f"{text}, {_day(period_end, tz)} ({_count(count)})"
    elif kind == DigestKind.ALUMNI:
        text = f"Alumni update, {alumni_period(lst, period_start, period_end, tz)[0]}"
    else:
        raise ValueError(f"unknown digest kind {kind!r}; use 'regular' or 'alumni'")
    prefix = lst.prefix.strip()
    return f"{prefix} {text}" if prefix else text


def build_regular_digest(
    lst: ListConfig,
    domain: str,
    posts: Sequence[DigestPost],
    *,
    period_end: datetime,
    tz: tzinfo,
    fmt: str,
) -> EmailMessage:
    """The digest of posts as one message: fmt 'mime' (multipart/digest) or 'plain' (RFC 1153),
    each with its text beside a simple HTML version (multipart/alternative)."""
    if not posts:
        raise ValueError("a digest needs at least one post; send none when there were no posts")
    if fmt not in ("mime", "plain"):
        raise ValueError(f"unknown digest format {fmt!r}; use 'mime' or 'plain'")
    ordered = sorted(posts, key=lambda p: p.received_at)
    subject = digest_subject(lst, DigestKind.REGULAR, period_end, len(ordered), tz)
    ctx = {
        "title": lst.display_title,
        "heading": subject.removeprefix(lst.prefix.strip()).strip(),
        "count_text": _count(len(ordered)),
        "span": _span(ordered[0].received_at, period_end, tz),
        "date": _day(period_end, tz),
        "list_address": list_address(lst.name, domain),
        "request_address": list_address(lst.name, domain, "request"),
        "reply_to_list": lst.reply_to == "list",
        "topics": [
            {
                "number": n,
                "subject": _one_line(p.subject) or "(no subject)",
                "name": _sender_name(p.sender),
            }
            for n, p in enumerate(ordered, 1)
        ],
    }
    msg = _envelope(lst, domain, subject, period_end, tz)
    if fmt == "plain":
        enclosed = [_enclosed(p, tz) for p in ordered]
        _set_alternative(
            msg,
            render_text("digest/plain.txt", messages=enclosed, **ctx),
            render_text("digest/toc.html", messages=enclosed, **ctx),
        )
        return msg
    # multipart/mixed holding the TOC (text and HTML as multipart/alternative) and then a
    # multipart/digest, as Mailman does: Gmail, Outlook, Apple Mail and Thunderbird all show a
    # mixed message's first part inline, choosing the HTML of an alternative, so the TOC is what
    # people see first and the posts follow as openable messages. A TOC *inside*
    # multipart/digest is legal (RFC 2046 5.1.5) but several clients then list it as one more
    # attached message or show nothing inline; an alternative at the top with the posts inside
    # its HTML branch would hide them from text-only readers.
    _set_alternative(
        msg,
        render_text("digest/toc.txt", **ctx),
        render_text("digest/toc.html", messages=[], **ctx),
    )
    msg.make_mixed()
    toc = next(msg.iter_parts())
    toc["Content-Description"] = f"Today's Topics ({ctx['count_text']})"
    digest = MIMEPart(policy=POLICY)
    reply_to = list_address(lst.name, domain) if lst.reply_to == "list" else None
    digest.set_payload([_attached(p, reply_to) for p in ordered])
    digest["Content-Type"] = "multipart/digest"
    msg.attach(cast(EmailMessage, digest))
    return msg


class Highlighter:
    """The period's threads ranked once; highlights are built once per thread, so rendering the
    alumni update for each field re-parses nothing (issue 13: 13 renders, not 13x the work)."""

    def __init__(self, posts: Sequence[DigestPost]) -> None:
        threads: dict[str, list[DigestPost]] = {}
        for p in sorted(posts, key=lambda p: p.received_at):
            threads.setdefault(p.thread_key, []).append(p)
        self.ranked = sorted(
            threads.items(), key=lambda kv: (-_replies(kv[1]), kv[1][0].received_at, kv[0])
        )
        self.posts = posts
        self._names: list[str] | None = None
        self._made: dict[str, Highlight] = {}

    def pick(self, limit: int, prefer: str = "") -> list[Highlight]:
        """The threads with the most replies (ties: earliest first), at most limit; threads
        naming the field prefer (the reader's own) come first."""
        chosen = sorted(
            self.ranked,
            key=lambda kv: not (prefer and any(prefer in p.fields for p in kv[1])),
        )[: max(limit, 0)]
        return [self._highlight(key, thread) for key, thread in chosen]

    def _highlight(self, key: str, thread: list[DigestPost]) -> Highlight:
        if key not in self._made:
            if self._names is None:
                self._names = _names(self.posts)
            self._made[key] = _highlight(thread, self._names)
        return self._made[key]


def pick_highlights(posts: Sequence[DigestPost], limit: int, prefer: str = "") -> list[Highlight]:
    """The threads with the most replies in the period (ties: earliest first), at most limit;
    threads that name the field prefer (the reader's own) come first."""
    return Highlighter(posts).pick(limit, prefer)


def build_alumni_digest(
    lst: ListConfig,
    domain: str,
    posts: Sequence[DigestPost],
    current: PeriodCounts,
    previous: PeriodCounts,
    *,
    period_start: datetime,
    period_end: datetime,
    tz: tzinfo,
    history: Sequence[PeriodCounts] = (),
    field: str = "",
    field_history: Sequence[PeriodCounts] = (),
    highlighter: Highlighter | None = None,
) -> EmailMessage:
    """The low-volume alumni update: the reader's field first (when they have one), then the
    group pulse, highlights, and how to come back or leave; text and HTML say the same.

    history and field_history are the last periods, oldest first, ending with the current one.
    """
    now_word, before_word, trend_word = PERIOD_WORDS.get(
        cadence_word(lst.alumni.schedule),
        ("this period", "the period before", "last six periods"),
    )
    mine = None
    if field and len(field_history) >= 2:
        mine = pulse_lines(field_history[-1], field_history[-2], field_history, FIELD_PULSE)
    label, span = alumni_period(lst, period_start, period_end, tz)
    ctx = dict(
        title=lst.display_title,
        heading=f"Alumni update, {label}",
        span=span,
        field=field if mine else "",
        field_pulse=mine or [],
        fields=list(lst.field_table),
        highlights=(highlighter or Highlighter(posts)).pick(lst.alumni.highlights, field),
        pulse=pulse_lines(current, previous, history),
        now_word=now_word,
        before_word=before_word,
        trend_word=trend_word,
        list_address=list_address(lst.name, domain),
        request_address=list_address(lst.name, domain, "request"),
    )
    msg = _envelope(
        lst,
        domain,
        digest_subject(lst, DigestKind.ALUMNI, period_end, len(posts), tz, period_start),
        period_end,
        tz,
    )
    _set_alternative(
        msg, render_text("digest/alumni.txt", **ctx), render_text("digest/alumni.html", **ctx)
    )
    return msg


# --- message parts ---------------------------------------------------------------------------


def _envelope(
    lst: ListConfig, domain: str, subject: str, when: datetime, tz: tzinfo
) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = Address(display_name=lst.display_title, username=lst.name, domain=domain)
    msg["To"] = list_address(lst.name, domain)
    msg["Subject"] = subject
    msg["Date"] = when.astimezone(tz)
    msg["Message-ID"] = make_msgid(idstring="digest", domain=domain)
    msg["MIME-Version"] = "1.0"
    return msg


def _set_alternative(part: MIMEPart, text: str, html: str) -> None:
    """Plain text first, then the HTML version: clients show the last part they can."""
    _set_text(part, text)
    part.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")


def _set_text(part: MIMEPart, text: str) -> None:
    # Quoted-printable keeps non-ASCII text 7-bit safe for relays without 8BITMIME.
    part.set_content(text, charset="utf-8", cte=None if text.isascii() else "quoted-printable")


def _attached(post: DigestPost, reply_to: str | None = None) -> MIMEPart:
    """A post as message/rfc822; on a reply_to = "list" list it gets the Reply-To its copy to
    a regular member has, so replying to it from the digest reaches the list (issue 13)."""
    inner = message_from_bytes(post.raw, policy=default)
    if reply_to:
        del inner["Reply-To"]
        inner["Reply-To"] = reply_to
    part = MIMEPart(policy=POLICY)
    part.set_content(inner, cte="7bit" if post.raw.isascii() else "8bit")
    return part


def _enclosed(post: DigestPost, tz: tzinfo) -> dict:
    """One RFC 1153 entry: the kept headers (decoded, one line each) and the text body."""
    msg = message_from_bytes(post.raw, policy=default)
    fallback = {
        "Date": format_datetime(post.received_at.astimezone(tz)),
        "From": post.sender,
        "Subject": post.subject,
        "Message-ID": post.message_id,
    }
    headers = []
    for name in RFC1153_HEADERS:
        value = _header(msg, name) or _decoded_value(name, fallback.get(name))
        if value:
            headers.append((name, _one_line(value)))
    # RFC 1153: blank the first character of body lines that would read as a separator.
    lines = [" " + line[1:] if line == "-" * 30 else line for line in first_text(msg).splitlines()]
    body = "\n".join(lines).strip("\n") or "[This message had no text.]"
    attachments = sum(1 for _ in msg.iter_attachments()) if msg.is_multipart() else 0
    if attachments:
        body += f"\n\n[{_count(attachments, 'attachment')} left out of this plain-text digest]"
    return {"headers": headers, "body": body}


def _header(msg: EmailMessage, name: str) -> str | None:
    """A header decoded to text; raw 8-bit values (no RFC 2047) are read as UTF-8 or Latin-1."""
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return None
    if isinstance(raw, str) and (text := readable(raw)) != raw:  # raw 8-bit bytes, no RFC 2047
        return text
    try:
        return str(default.header_fetch_parse(name, raw))  # unfolds, decodes RFC 2047
    except (ValueError, IndexError, TypeError, AttributeError):  # email package parser bugs
        return str(raw)


def _decoded_value(name: str, value: str | None) -> str | None:
    try:
        return None if value is None else str(default.header_factory(name, value))
    except (ValueError, IndexError, TypeError, AttributeError):
        return value


# --- highlights: short and impersonal --------------------------------------------------------

# "Hi all," or "Dear fellow job seekers," but not "Hi, Acme is hiring 5 developers".
_GREETING = re.compile(
    r"^(hi|hello|hey|dear|greetings|good (morning|afternoon|evening))\b"
    r"(\W+\w+){0,3}\W*$",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,5}\)[ .-]?)?"  # +1 (555) 123-4567
    r"\d{2,5}(?:[ .-]\d{2,6}){1,4}(?!\w)"
    r"|(?<!\w)\+?\d{9,15}(?!\w)"
)  # 5551234567
_DATE = re.compile(r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}")


def _replies(thread: list[DigestPost]) -> int:
    return sum(1 for p in thread if p.message_id != p.thread_key)


def _highlight(thread: list[DigestPost], names: list[str]) -> Highlight:
    # The starter may predate the period; then the thread's earliest post stands in for it.
    starter = next((p for p in thread if p.message_id == p.thread_key), thread[0])
    subject = _scrub(_one_line(strip_markers(starter.subject)), names) or "(no subject)"
    body = first_text(message_from_bytes(starter.raw, policy=default))
    return Highlight(subject=subject, replies=_replies(thread), excerpt=_excerpt(body, names))


def _excerpt(text: str, names: list[str]) -> str:
    kept: list[str] = []
    for s in own_lines(text[:20000]):  # no quotes, attributions, signatures or mobile footers
        if not kept and _GREETING.match(s):
            continue
        if any(c.isalnum() for c in s):  # rules like "-----" or "***" say nothing
            kept.append(s)
    return _shorten(_scrub(" ".join(kept)[:2000], names), EXCERPT_CHARS)


def _scrub(text: str, names: list[str]) -> str:
    """Text with email addresses, phone numbers and the posters' names taken out."""
    text = _EMAIL.sub("[address]", text)
    text = _PHONE.sub(
        lambda m: (
            m[0] if _DATE.fullmatch(m[0]) or sum(c.isdigit() for c in m[0]) < 7 else "[phone]"
        ),
        text,
    )
    # A name is left out rather than shown as a "[name]" placeholder (issue 13); what it
    # leaves behind ("Thanks, ." or "( )") is tidied away.
    for name in names:
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", "\x00", text)
    if "\x00" not in text:
        return text
    text = re.sub(r"\(\s*(?:\x00\s*)+\)", "", text)
    text = re.sub(r"(?:\s*\x00)+", "", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(?=[.!?]|$)", "", text)
    return re.sub(r"\s{2,}", " ", text).strip(" ,;:-")


def _names(posts: Sequence[DigestPost]) -> list[str]:
    """Posters' display names and their parts (as written and title-cased), longest first."""
    found: set[str] = set()
    for p in posts:
        full = _sender_name(p.sender, address_if_no_name=False)
        parts = [w for w in re.split(r"[\s,\"'()]+", full) if len(w) >= 2 and w[0].isalpha()]
        for w in [full.strip(), *parts]:
            if w:
                found.update({w, w.title()})
    return sorted(found, key=len, reverse=True)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


# --- small words -----------------------------------------------------------------------------


def _sender_name(sender: str, address_if_no_name: bool = True) -> str:
    """The display name in a From value (RFC 2047 decoded), else its address."""
    try:
        addresses = default.header_factory("From", sender).addresses
    except (ValueError, IndexError, TypeError, AttributeError):
        addresses = ()
    if addresses:
        name, addr = addresses[0].display_name, addresses[0].addr_spec
    else:
        name, addr = parseaddr(sender)
    return _one_line(name) or (addr if address_if_no_name else "")


def _one_line(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _count(n: int, noun: str = "message") -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _day(when: datetime, tz: tzinfo) -> str:
    d = when.astimezone(tz)
    return f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}"


def _span(start: datetime, end: datetime, tz: tzinfo) -> str:
    first, last = _day(start, tz), _day(end, tz)
    return f"on {last}" if first == last else f"from {first} to {last}"


def alumni_period(
    lst: ListConfig, start: datetime | None, end: datetime, tz: tzinfo
) -> tuple[str, str]:
    """(subject label, body span) of an alumni update, naming the same time: a monthly update
    that covers the month before it is sent is 'November 2026' / 'in November 2026'; any other
    (a first, short run; another cadence) is named by its end day and spans its real dates."""
    last_day = end.astimezone(tz) - timedelta(days=1)
    month_start = last_day.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    whole_month = start is None or start.astimezone(tz) <= month_start + timedelta(days=1)
    if cadence_word(lst.alumni.schedule) == "Monthly" and whole_month:
        month = f"{MONTHS[last_day.month - 1]} {last_day.year}"
        return month, f"in {month}"
    return _day(end, tz), _span(start or end, end, tz)
