"""Read member lists exported by Mailman 2 and 3, Google Groups, Groups.io and listserv, lazily."""

from __future__ import annotations

import csv
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import PurePath
from typing import Literal, cast

from listserv.addresses import is_valid_address, normalise

Delivery = Literal["regular", "digest", "alumni"]
Status = Literal["active", "disabled", "left"]

FORMATS = (
    "listserv",
    "mailman3-members",
    "mailman3-postorius",
    "mailman2",
    "google-groups",
    "groupsio",
)
LABELS = {
    "listserv": "a listserv export",
    "mailman3-members": "a Mailman 3 export",
    "mailman3-postorius": "a Mailman 3 (Postorius) export",
    "mailman2": "a Mailman 2 export",
    "google-groups": "a Google Groups export",
    "groupsio": "a Groups.io export",
}
SNIFF_LINES = 20  # read_members looks at this many lines to detect a format

DELIVERIES: tuple[Delivery, ...] = ("regular", "digest", "alumni")
STATUSES: tuple[Status, ...] = ("active", "disabled", "left")


class UnknownFormatError(ValueError):
    """The file is none of the formats we read; str() says what to do about it."""


@dataclass(frozen=True)
class ImportRow:
    """One member read from an export."""

    line: int
    address: str
    name: str = ""
    delivery: Delivery = "regular"
    status: Status = "active"
    field: str = ""
    source_mode: str = "regular"


@dataclass(frozen=True)
class BadRow:
    """A line that could not be read as a member, with a sentence saying why."""

    line: int
    text: str
    problem: str


Row = ImportRow | BadRow


@dataclass
class Summary:
    """Counts of what was read, for one line of output after an import."""

    fmt: str = "listserv"
    delivery: Counter[str] = field(default_factory=Counter)
    status: Counter[str] = field(default_factory=Counter)
    active: Counter[str] = field(default_factory=Counter)
    bad: int = 0

    def add(self, row: Row) -> None:
        """Count one row."""
        if isinstance(row, BadRow):
            self.bad += 1
            return
        self.delivery[row.delivery] += 1
        self.status[row.status] += 1
        if row.status == "active":
            self.active[row.delivery] += 1

    @property
    def members(self) -> int:
        return sum(self.status.values())

    def line(self) -> str:
        """E.g. 'read 3 members from a Mailman 3 export: 2 regular, 1 digest; 1 bad row skipped'."""
        source = LABELS.get(self.fmt, self.fmt)
        parts = [f"{self.active[d]} {d}" for d in DELIVERIES if self.active[d]]
        if self.status["disabled"]:
            parts.append(f"{self.status['disabled']} with no mail (imported as disabled)")
        if self.status["left"]:
            parts.append(f"{self.status['left']} banned or unsubscribed (imported as left)")
        text = f"read {_count(self.members, 'member')} from {source}"
        text += f": {', '.join(parts)}" if parts else ""
        return text + (f"; {_count(self.bad, 'bad row')} skipped" if self.bad else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- delivery and status words ---------------------------------------------------------------
# Each format's reader hands its mode words here; _resolve maps them onto our delivery and status.

_OFF = "off"  # delivery turned off: imported as status disabled
_NOT_MEMBER = "none"  # invited or unconfirmed: not imported

_DELIVERY_WORDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "regular",
            "email",
            "all email",
            "individual",
            "individual messages",
            "single",
            "email delivery single",
            "normal",
        ),
        "regular",
    ),
    **dict.fromkeys(
        (
            "digest",
            "mime",
            "mime digest",
            "mime digests",
            "plain",
            "plain digest",
            "plaintext",
            "plaintext digest",
            "plaintext digests",
            "summary digests",
            "html digest",
            "full featured digest",
            "daily summary",
            "summary",
            "abridged",
            "abridged email",
            "digest email",
            "email delivery digest",
            "email delivery html digest",
            "email delivery summary",
        ),
        "digest",
    ),
    "alumni": "alumni",
    **dict.fromkeys(
        (
            "nomail",
            "no mail",
            "no email",
            "none",
            "disabled",
            "vacation",
            "suspended",
            "special",
            "special notices only",
            "email delivery special",
            "email delivery none",
            "web only",
        ),
        _OFF,
    ),
}

_STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "active",
            "enabled",
            "normal",
            "approved",
            "confirmed",
            "subscribed",
            "member",
            "manager",
            "owner",
            "moderator",
        ),
        "active",
    ),
    **dict.fromkeys(
        (
            "disabled",
            "nomail",
            "no mail",
            "vacation",
            "suspended",
            "bouncing",
            "bounced",
            "by user",
            "by bounces",
            "by moderator",
            "byuser",
            "bybounces",
            "bybounce",
            "byadmin",
            "unknown",
        ),
        "disabled",
    ),
    **dict.fromkeys(("left", "banned", "unsubscribed", "removed", "deleted"), "left"),
    **dict.fromkeys(
        ("pending", "pending approval", "invited", "not confirmed", "nc", "unconfirmed"),
        _NOT_MEMBER,
    ),
}
_RANK = {"active": 0, "disabled": 1, "left": 2}


def _norm(word: str) -> str:
    """'Full_Featured  Digest' -> 'full featured digest'."""
    return " ".join(word.replace("_", " ").replace("-", " ").lower().split())


@dataclass(frozen=True)
class _Defaults:
    delivery: Delivery
    status: Status

    @property
    def mode(self) -> str:
        return {"disabled": "nomail", "left": "left"}.get(self.status, self.delivery)


@dataclass(frozen=True)
class _Mode:
    delivery: Delivery
    status: Status
    source: str


def _resolve(
    delivery_word: str, status_words: Iterable[str], defaults: _Defaults, strict: bool
) -> _Mode | str:
    """The delivery and status a row's words mean, or a sentence saying why they can't be used."""
    delivery, status, seen = defaults.delivery, defaults.status, []
    word = _norm(delivery_word)
    if word:
        kind = _DELIVERY_WORDS.get(word)
        if kind is None and strict:
            return f"delivery {delivery_word!r} is not one of {', '.join(DELIVERIES)}"
        if kind == _OFF:
            status = _worse(status, "disabled")
        elif kind is not None:
            delivery = cast(Delivery, kind)
        seen.append(word)
    for raw in status_words:
        word = _norm(raw)
        kind = _STATUS_WORDS.get(word) if word else "active"
        if kind is None and strict:
            return f"status {raw!r} is not one of {', '.join(STATUSES)}"
        if kind == _NOT_MEMBER:
            return f"status {raw!r} means they had not joined yet; add them by hand if they should"
        if kind not in (None, "active"):
            status, seen = _worse(status, cast(Status, kind)), [*seen, word]
    return _Mode(delivery, status, ", ".join(seen) or defaults.mode)


def _worse(a: Status, b: Status) -> Status:
    return a if _RANK[a] >= _RANK[b] else b


def _member(line: int, address: str, name: str, mode: _Mode | str, fld: str = "") -> Row:
    """An ImportRow, or a BadRow when the address or the mode can't be used."""
    address = address.strip()
    canonical = normalise(address)
    if not is_valid_address(canonical):
        return BadRow(line, address, f"{address!r} is not an email address")
    if isinstance(mode, str):
        return BadRow(line, address, mode)
    return ImportRow(
        line, canonical, name.strip(), mode.delivery, mode.status, fld.strip(), mode.source
    )


# -- detection -------------------------------------------------------------------------------


def detect_format(first_lines: list[str], filename: str) -> str:
    """Which of FORMATS the file is, from its first lines and its name."""
    lines = [c for c in (_clean(x) for x in first_lines) if c and not c.startswith("#")]
    where = filename or "the file"
    if not lines:
        raise UnknownFormatError(f"{where} has no lines to read; is it the right file?")
    fmt = _csv_format(_cells(lines[0])) or _address_list_format(lines, PurePath(filename).name)
    if fmt is None:
        raise UnknownFormatError(
            f"{where}: can't tell which export this is from its first line {lines[0][:60]!r}; "
            f"give the format as one of {', '.join(FORMATS)} (a CSV of our own needs an "
            "'address' column)"
        )
    return fmt


def _clean(line: str) -> str:
    return line.lstrip("\ufeff").strip()


def _cells(line: str) -> list[str]:
    try:
        return [_norm(c) for c in next(csv.reader([line]), [])]
    except csv.Error:
        return []


_GOOGLE_COLUMNS = {
    "email address",
    "nickname",
    "group status",
    "email status",
    "email preference",
    "posting permissions",
}
_POSTORIUS_COLUMNS = {
    "delivery mode",
    "delivery status",
    "moderation action",
    "role",
    "subscription mode",
}
_GROUPSIO_COLUMNS = {
    "display name",
    "username",
    "email delivery",
    "message selection",
    "mod status",
    "posting privilege",
    "joined",
}


def _csv_format(cells: list[str]) -> str | None:
    """The format a header row names, if it is one."""
    names = set(cells)
    if cells and cells[0].startswith("members for group") or len(names & _GOOGLE_COLUMNS) >= 2:
        return "google-groups"
    if "address" in names:
        return "listserv"
    if "email" in names and names & _POSTORIUS_COLUMNS:
        return "mailman3-postorius"
    if "email" in names and names & _GROUPSIO_COLUMNS:
        return "groupsio"
    return None


_NO_MEMBERS = re.compile(r"^\S+ has no members$")
_MM3_HINTS = re.compile(r"=\?[^?]+\?[qQbB]\?|^[^\"<]*[,.][^\"<]*<")


def _address_list_format(lines: list[str], name: str) -> str | None:
    """mailman2, mailman3-members or mailman3-postorius for a file of one address a line."""
    looks = [_address_line(x) for x in lines]
    if not looks[0] or sum(looks) * 2 < len(lines):
        return None
    name = name.lower()
    if name.endswith(".csv") or "postorius" in name:
        return "mailman3-postorius"
    if any(hint in name for hint in ("mailman3", "mm3")):
        return "mailman3-members"
    if any(hint in name for hint in ("mailman2", "mm2", "list_members")):
        return "mailman2"
    return "mailman3-members" if any(_mm3_line(x) for x in lines) else "mailman2"


def _address_line(line: str) -> bool:
    """'Name <a@b>', 'a@b' or Mailman 3's empty-list line; not a CSV row like 'a@b,Name'."""
    address = _mailbox(line)[1]
    return ("@" in address and "," not in address) or bool(_NO_MEMBERS.match(line))


def _mm3_line(line: str) -> bool:
    """Output only Mailman 3 writes: the empty-list line, RFC 2047 names, unquoted specials,
    or upper case in an address (Mailman 2 lowers it unless run with -p)."""
    _name, address = _mailbox(line)
    return bool(_NO_MEMBERS.match(line) or _MM3_HINTS.search(line) or address != address.lower())


# -- reading ---------------------------------------------------------------------------------


def read_members(
    lines: Iterable[str],
    fmt: str | None = None,
    filename: str = "",
    *,
    default_delivery: Delivery = "regular",
    default_status: Status = "active",
) -> Iterator[Row]:
    """Rows of an export, one by one; the format is detected when fmt is None.

    default_delivery and default_status apply where the file says nothing, as in
    Mailman 2's `list_members -d` or Mailman 3's `mailman members -d any` output.
    """
    if default_delivery not in DELIVERIES or default_status not in STATUSES:
        raise ValueError(f"bad default delivery/status {default_delivery!r}/{default_status!r}")
    source = iter(lines)
    if fmt is None:
        head = list(itertools.islice(source, SNIFF_LINES))
        fmt = detect_format(head, filename)
        source = itertools.chain(head, source)
    if fmt not in _READERS:
        raise UnknownFormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return _READERS[fmt](source, _Defaults(default_delivery, default_status))


# -- one address a line: Mailman 2 `list_members`, Mailman 3 `mailman members` ---------------


def _read_mailman2(lines: Iterator[str], defaults: _Defaults) -> Iterator[Row]:
    # GNU Mailman 2.1 bin/list_members: one member a line, addresses lowercased unless -p;
    # with -f (--fullnames) each is email.Utils.formataddr((name, addr)), which quotes a name
    # holding any of ][\()<>@,:;". and backslash-escapes ][\()".  No mode is printed: -r
    # prints regular members only, -d [mime|plain] digest members, -n [why] delivery-disabled
    # ones, and with neither -r nor -d regular then digest members with nothing to tell them
    # apart, so the mode comes from default_delivery / default_status.
    # Source: bin/list_members in Mailman 2.1 (its usage text and main()).
    return _read_address_lines(lines, defaults)


def _read_mailman3_members(lines: Iterator[str], defaults: _Defaults) -> Iterator[Row]:
    # GNU Mailman 3 `mailman members LISTSPEC` (src/mailman/commands/cli_members.py):
    # members sorted by address, one a line.  The 2019-2021 releases print
    # formataddr((display_name, original_email)): quoted names, RFC 2047 words for non-ASCII;
    # the 2023 source prints f'{display_name} <{email}>' unquoted (a comma may stand in the
    # name) or the bare address (always so with --email-only).  An empty list prints
    # '<list-id> has no members'.  Delivery is never printed: --regular, --digest KIND and
    # --nomail WHY only filter, so the mode comes from default_delivery / default_status.
    return _read_address_lines(lines, defaults)


def _read_address_lines(lines: Iterator[str], defaults: _Defaults) -> Iterator[Row]:
    mode = _Mode(defaults.delivery, defaults.status, defaults.mode)
    for number, raw in enumerate(lines, 1):
        text = _clean(raw)
        if text and not text.startswith("#") and not _NO_MEMBERS.match(text):
            name, address = _mailbox(text)
            yield _member(number, address, name, mode)


def _mailbox(text: str) -> tuple[str, str]:
    """(name, address) from 'Name <addr>', '"Name" <addr>', 'addr (Name)' or 'addr'."""
    if text.endswith(">") and "<" in text:
        head, _, tail = text.rpartition("<")
        return _display_name(head), tail[:-1].strip()
    if not any(c.isspace() for c in text):
        return "", text
    name, address = parseaddr(text)
    return (_display_name(name), address) if "@" in address else ("", text)


def _display_name(text: str) -> str:
    """A display name with its quotes, backslash escapes and RFC 2047 encoding undone."""
    name = text.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    if "=?" in name:
        try:
            name = str(make_header(decode_header(name)))
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            pass
    return " ".join(name.split())


# -- CSV files -------------------------------------------------------------------------------


class _Tape:
    """An iterator of lines that remembers the last one handed out (for csv.Error reports)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines, self.last = lines, ""

    def __iter__(self) -> _Tape:
        return self

    def __next__(self) -> str:
        self.last = next(self._lines)
        return self.last


Record = tuple[int, list[str]]


def _records(lines: Iterator[str]) -> Iterator[Record | BadRow]:
    """(first line number, cells) for each non-blank CSV record; a BadRow where csv gives up."""
    tape = _Tape(lines)
    reader = csv.reader(tape)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield BadRow(reader.line_num, _clean(tape.last), f"this line is not valid CSV ({exc})")
        else:
            if start == 1 and cells:
                cells[0] = cells[0].lstrip("\ufeff")
            if any(c.strip() for c in cells):
                yield start, cells
        start = reader.line_num + 1


@dataclass(frozen=True)
class _Columns:
    """Which header names hold what, for one CSV format (names compared after _norm)."""

    address: tuple[str, ...]
    name: tuple[str, ...] = ()
    delivery: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    field: tuple[str, ...] = ()
    strict: bool = False  # unknown delivery/status words are bad rows, not 'regular'/'active'


def _read_table(
    records: Iterator[Record | BadRow], defaults: _Defaults, columns: _Columns, skip_title: str = ""
) -> Iterator[Row]:
    """Rows of a CSV whose first record (after an optional title row) is a header."""
    places: _Places | None = None
    modes: dict[tuple[str, ...], _Mode | str] = {}  # a file has few mode words: resolve each once
    for record in records:
        if isinstance(record, BadRow):
            yield record
        elif places is not None:
            yield _table_row(record[0], record[1], places, columns, defaults, modes)
        elif not (skip_title and _norm(record[1][0]).startswith(skip_title)):
            header = {_norm(c): i for i, c in reversed(list(enumerate(record[1])))}
            if not any(a in header for a in columns.address):
                yield BadRow(record[0], ",".join(record[1]), _no_header(columns))
                return
            places = _places(header, columns)


def _no_header(columns: _Columns) -> str:
    return (
        f"the first row must be a header with an {columns.address[0]!r} column, "
        "so no rows were read"
    )


@dataclass(frozen=True)
class _Places:
    """Where each kind of value may stand in a row: the header's indexes, by preference."""

    address: tuple[int, ...]
    name: tuple[int, ...]
    delivery: tuple[int, ...]
    status: tuple[tuple[int, ...], ...]  # one entry per status column, read separately
    field: tuple[int, ...]


def _places(header: dict[str, int], columns: _Columns) -> _Places:
    def where(names: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(header[n] for n in names if n in header)

    return _Places(
        where(columns.address),
        where(columns.name),
        where(columns.delivery),
        tuple(where((n,)) for n in columns.status),
        where(columns.field),
    )


def _table_row(
    number: int,
    cells: list[str],
    places: _Places,
    columns: _Columns,
    defaults: _Defaults,
    modes: dict[tuple[str, ...], _Mode | str],
) -> Row:
    width = len(cells)

    def get(indexes: tuple[int, ...]) -> str:
        for i in indexes:
            if i < width:
                return cells[i].strip()
        return ""

    words = (get(places.delivery), *(get(p) for p in places.status))
    mode = modes.get(words)
    if mode is None:
        mode = _resolve(words[0], words[1:], defaults, columns.strict)
        if len(modes) < 1000:  # a file of ever new words can't grow the cache without end
            modes[words] = mode
    return _member(number, get(places.address), get(places.name), mode, get(places.field))


# Our own `listserv members export` CSV, and the hand-made CSV the SPEC describes (section 10):
# a header row with an 'address' column and optional 'name', 'delivery' (regular, digest or
# alumni), 'status' (active, disabled or left) and 'field' columns.
_LISTSERV = _Columns(
    address=("address",),
    name=("name",),
    delivery=("delivery",),
    status=("status",),
    field=("field",),
    strict=True,
)


def _read_listserv(lines: Iterator[str], defaults: _Defaults) -> Iterator[Row]:
    return _read_table(_records(lines), defaults, _LISTSERV)


# Google Groups "Export members" CSV.  The file starts with a title row
# 'Members for group <group name>' padded with commas, then the header
# Email address,Nickname,Group status,Email status,Email preference,Posting permissions,
# Join year,Join month,Join day,Join hour,Join minute,Join second,Time zone
# with values such as 'member'/'manager'/'owner' (Group status), '' or 'bouncing' (Email status)
# and 'email', 'digest', 'abridged' or 'no email' (Email preference).  Sources: a public README
# that quotes such an export row for row (adas-team/ElectionsApp, src/firebase/mailingList) and
# Google's Groups help on subscription types (All email, Digest, Abridged, None); Google
# publishes no specification of the file, so values are matched loosely.
_GOOGLE = _Columns(
    address=("email address", "email"),
    name=("nickname", "name"),
    delivery=("email preference", "subscription"),
    status=("group status", "email status"),
)


def _read_google_groups(lines: Iterator[str], defaults: _Defaults) -> Iterator[Row]:
    return _read_table(_records(lines), defaults, _GOOGLE, skip_title="members for group")


# Groups.io member list download (Members page, Premium and Enterprise groups).  Groups.io
# publishes no column list for it; we read the columns by name: the address from 'Email',
# the name from 'Display Name', the delivery from 'Email Delivery' with Groups.io's documented
# settings (Individual Messages, Full Featured Digest, Plain Digest, Daily Summary, Special
# Notices Only, No Email; the API spells them email_delivery_single, _digest, _html_digest,
# _summary, _special, _none) and the status from 'Status' (Normal/Approved, Bouncing, Bounced,
# Banned; Pending and Not Confirmed people are not members yet).  Sources: the Groups.io help
# center's "Setting membership defaults" page and the Groups.io API member fields.
_GROUPSIO = _Columns(
    address=("email", "email address"),
    name=("display name", "full name", "name"),
    delivery=("email delivery", "delivery", "delivery mode"),
    status=("status", "subscription status", "member status"),
)


def _read_groupsio(lines: Iterator[str], defaults: _Defaults) -> Iterator[Row]:
    return _read_table(_records(lines), defaults, _GROUPSIO)


# Postorius (Mailman 3's web UI) "CSV export" on a list's Members page: postorius views/list.py
# csv_view() writes one row per member with the address alone and no header
# (Content-Disposition filename "Subscribers.csv"); this held from Postorius 1.0 to at least
# 1.3.x.  A 2025 merge request ("Making CSV Export more useful", postorius!993) adds columns;
# we could not read its change, so a header row naming 'email' and Mailman 3 REST member
# fields (display_name, delivery_mode, delivery_status) is read by name as well.
_POSTORIUS = _Columns(
    address=("email", "address", "email address"),
    name=("display name", "name"),
    delivery=("delivery mode",),
    status=("delivery status",),
)


def _read_postorius(lines: Iterator[str], defaults: _Defaults) -> Iterator[Row]:
    records = _records(lines)
    first = next(records, None)
    if first is None:
        return iter(())
    records = itertools.chain([first], records)
    if (
        isinstance(first, tuple)
        and "@" not in first[1][0]
        and _csv_format([_norm(c) for c in first[1]])
    ):
        return _read_table(records, defaults, _POSTORIUS)
    return _read_bare_csv(records, defaults)


def _read_bare_csv(records: Iterator[Record | BadRow], defaults: _Defaults) -> Iterator[Row]:
    mode = _Mode(defaults.delivery, defaults.status, defaults.mode)
    for record in records:
        yield record if isinstance(record, BadRow) else _member(record[0], record[1][0], "", mode)


_READERS = {
    "listserv": _read_listserv,
    "mailman3-members": _read_mailman3_members,
    "mailman3-postorius": _read_postorius,
    "mailman2": _read_mailman2,
    "google-groups": _read_google_groups,
    "groupsio": _read_groupsio,
}
