"""Pure helpers on messages: a raw header block we can edit while the body stays byte-for-byte."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

from listserv.addresses import sender_address
from listserv.text import html_to_text

SMTP_POLICY = policy.SMTP
_PARSER = BytesParser(policy=policy.default)
_HEADER_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")
BIG_FIELD = 16 * 1024  # bytes of one header field the email package is given to parse


def parse(raw: bytes) -> EmailMessage:
    """The whole message, parsed with the default policy."""
    return _PARSER.parsebytes(raw)


def split_raw(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) with CRLF line ends; the blank line belongs to neither."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = raw.find(sep)
        if idx != -1:
            head, body = raw[:idx], raw[idx + len(sep) :]
            break
    else:
        head, body = raw, b""
    if raw.startswith((b"\r\n", b"\n")):  # no headers at all
        head, body = b"", raw.lstrip(b"\r\n")
    return _crlf(head), body if b"\r\n" in body or b"\n" not in body else _crlf(body)


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)


def _header_lines(head: bytes) -> list[tuple[str, bytes]]:
    """Split a header block into (lower-case name, raw bytes of the whole folded field).

    Linear in the size of the block: a field's lines are joined once, at the end (a folded
    8 MB header appended line by line took minutes: issue 10).
    """
    fields: list[tuple[str, list[bytes]]] = []
    for line in head.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
            continue
        m = _HEADER_NAME.match(line)
        if m is None:
            continue  # not a header line: drop it rather than corrupt the block
        fields.append((m.group(1).decode("ascii").lower(), [line]))
    return [(name, b"\r\n".join(lines)) for name, lines in fields]


_FIELD_LINE = re.compile(rb"[!-9;-~]+:|[ \t]")


def _well_formed(head: bytes) -> bool:
    r"""Every line a field (a name, the colon right after it) or a continuation, and no bare CR:
    a block the email package reads field by field, as RawMessage.get does without it.

    >>> _well_formed(b"From: a@x\r\nSubject: hi\r\n  there"), _well_formed(b"Subject : hi")
    (True, False)
    >>> _well_formed(b"From: a@x\rX-Evil: y"), _well_formed(b"From a@x Mon\r\nTo: b@y")
    (False, False)
    """
    if b"\r" in head.replace(b"\r\n", b""):
        return False
    return all(_FIELD_LINE.match(line) for line in head.split(b"\r\n") if line)


_SURROGATE = re.compile("[\udc80-\udcff]")


def readable(text: str) -> str:
    """Text with undecodable 8-bit bytes (kept by the parser as surrogates) turned into characters.

    Raw 8-bit headers are most often UTF-8, else Latin-1; either way the result can be re-encoded.
    """
    if text.isascii() or not _SURROGATE.search(text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def fold(name: str, value: str) -> bytes:
    """One header field, folded and encoded by the email package (RFC 5322 / 2047); short ones
    remembered, as a list's own fields are the same on every post (issue 12)."""
    return _fold_short(name, value) if len(value) <= 256 else _fold(name, value)


@functools.lru_cache(maxsize=1024)
def _fold_short(name: str, value: str) -> bytes:
    return _fold(name, value)


def _fold(name: str, value: str) -> bytes:
    value = _clean(value)
    if not value.isascii():  # fold_binary RFC 2047-encodes only long values; a header object always
        return SMTP_POLICY.fold_binary(name, SMTP_POLICY.header_factory(name, value))
    return SMTP_POLICY.fold_binary(name, value)


# RFC 2369 fields carry <URL> lists that must reach the client intact: an ASCII line of up
# to 998 octets is valid (RFC 5322 2.1.1), while the default 78 would RFC 2047-encode a long URL.
_URI_POLICY = SMTP_POLICY.clone(max_line_length=998)


def fold_uris(name: str, value: str) -> bytes:
    """A field holding <URL> lists (List-Unsubscribe ...), never encoded; built by the email package."""
    return _URI_POLICY.fold_binary(name, _clean(value))


def _clean(value: str) -> str:
    """Header values never carry CR or LF (no header injection)."""
    return re.sub(r"[\r\n]+", " ", value)


class RawMessage:
    """A received message whose headers we edit; untouched fields and the body stay as received."""

    def __init__(self, raw: bytes) -> None:
        head, self.body = split_raw(raw)
        self.fields = _header_lines(head)
        self._parsed: Message | None = None  # the whole block parsed, once something needs it
        if not _well_formed(head):  # read as the email package reads it, oddities and all
            self._parsed = _PARSER.parsebytes(head + b"\r\n\r\n", headersonly=True)
        self._own: dict[str, str] = {}  # fields set here (the first of each name), as given
        self._read: dict[str, str | None] = {}  # decoded first values, until a field changes

    @property
    def parsed(self) -> Message:
        """The header block parsed by the email package: only get_all() needs it. Parsing it
        for every message (twice per post: received, then decorated) was a tenth of the CPU
        of dispatching one (issue 12); get() decodes just the field it is asked for."""
        if self._parsed is None:
            self._parsed = _PARSER.parsebytes(self.head_bytes() + b"\r\n", headersonly=True)
        return self._parsed

    def get(self, name: str, default: str = "") -> str:
        """The decoded value of the first field called name (decoded once: the email package's
        header parsing was a third of dispatching a post, issue 12)."""
        low = name.lower()
        if low not in self._read:
            self._read[low] = self._decode(name)
        value = self._read[low]
        return default if value is None else value

    def _decode(self, name: str) -> str | None:
        big = self._big(name)
        if big is not None:
            return big
        low = name.lower()
        try:
            if low in self._own:  # read as the email package reads a value set on a message
                value = policy.default.header_fetch_parse(name, self._own[low])
            elif self._parsed is not None:
                value = self._parsed.get(name)
            else:  # as the email package reads a field it parsed: the value after the colon
                data = next((d for n, d in self.fields if n == low), None)
                if data is None:
                    return None
                text = data.decode("ascii", "surrogateescape").partition(":")[2]
                value = policy.default.header_fetch_parse(name, text.lstrip(" \t"))
        except Exception:  # noqa: BLE001 - an undecodable header reads as absent
            return None
        return None if value is None else readable(str(value))

    def _big(self, name: str) -> str | None:
        """A field too big for the email package (its header parsing is quadratic: a 256 KB
        folded field took 0.8 s, issue 10) reads as its first BIG_FIELD bytes, parsed."""
        low = name.lower()
        data = next((d for n, d in self.fields if n == low), None)
        if data is None or len(data) <= BIG_FIELD:
            return None
        value = data.partition(b":")[2][:BIG_FIELD]
        text = re.sub(r"\r\n[ \t]+", " ", value.decode("utf-8", "surrogateescape")).strip()
        try:
            return readable(str(policy.default.header_factory(name, text)))
        except Exception:  # noqa: BLE001 - an undecodable header reads as its raw text
            return readable(text)

    def get_all(self, name: str) -> list[str]:
        try:
            return [readable(str(v)) for v in self.parsed.get_all(name, [])]
        except Exception:  # noqa: BLE001
            return []

    def has(self, name: str) -> bool:
        low = name.lower()
        return any(n == low for n, _ in self.fields)

    def remove(self, *names: str) -> None:
        lows = {n.lower() for n in names}
        self._read.clear()
        self.fields = [(n, data) for n, data in self.fields if n not in lows]
        for low in lows:
            self._own.pop(low, None)
        if self._parsed is not None:
            for name in names:
                del self._parsed[name]

    def add(self, name: str, value: str) -> None:
        """Append a new field, folded by the email package."""
        self._read.clear()
        if not self.has(name):  # the first of its name: get() reads it
            self._own[name.lower()] = _clean(value)
        self.fields.append((name.lower(), fold(name, value).rstrip(b"\r\n")))
        self._store(name, value)

    def set(self, name: str, value: str) -> None:
        """Replace every field called name with one new field at the first one's place."""
        low = name.lower()
        self._read.clear()
        new = (low, fold(name, value).rstrip(b"\r\n"))
        idx = next((i for i, (n, _) in enumerate(self.fields) if n == low), None)
        self.fields = [(n, d) for n, d in self.fields if n != low]
        self.fields.insert(len(self.fields) if idx is None else idx, new)
        self._own[low] = _clean(value)
        if self._parsed is not None:
            del self._parsed[name]
        self._store(name, value)

    def _store(self, name: str, value: str) -> None:
        # Parsed only when read, as a received field is: the email package's structured parse
        # of each field decorate() adds was a fifth of handling a post (issue 12).
        if self._parsed is not None:
            self._parsed.set_raw(name, _clean(value))

    def head_bytes(self) -> bytes:
        return b"".join(data + b"\r\n" for _, data in self.fields)

    def to_bytes(self) -> bytes:
        return self.head_bytes() + b"\r\n" + self.body


@dataclass
class Incoming:
    """One accepted message on its way: the raw bytes, the envelope and what we read from it."""

    raw: bytes
    mail_from: str
    msg: RawMessage
    now: datetime
    _text: str | None = field(default=None, repr=False, compare=False)
    # what classifiers found, read before the write transaction (dispatch.read_ahead)
    memo: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def sender(self) -> str | None:
        """The From address, else the envelope sender."""
        return sender_address(self.msg.get("from")) or sender_address(self.mail_from)

    @property
    def subject(self) -> str:
        return self.msg.get("subject")

    @property
    def message_id(self) -> str:
        """The Message-ID without whitespace or control characters: an RFC 2047-encoded CR/LF
        in it made every reply's In-Reply-To fail (issue 10)."""
        return re.sub(r"[\s\x00-\x1f\x7f]+", "", self.msg.get("message-id"))

    def text(self) -> str:
        """The first text part (HTML as text, quotes as "> " lines); '' when there is none."""
        if self._text is None:  # parsed once: the inbound worker does it before its transaction
            self._text = first_text(parse(self.raw))
        return self._text


def add_fields(raw: bytes, fields: bytes) -> bytes:
    """Insert pre-folded header fields at the end of a message's header block."""
    idx = raw.find(b"\r\n\r\n")
    if idx == -1:
        return raw + b"\r\n" + fields
    return raw[: idx + 2] + fields + raw[idx + 2 :]


def addresses_in(values: list[str]) -> list[str]:
    """The addr-specs in a list of address header values, lower case."""
    return [addr.lower() for _name, addr in getaddresses(values) if addr]


def message_ids(value: str) -> list[str]:
    """The <...> ids in a References or In-Reply-To value."""
    return re.findall(r"<[^<>\s]+>", value or "")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab, LF, CR


def first_text(msg: EmailMessage) -> str:
    """The first text/plain body decoded, or the HTML body as text; '' when there is neither."""
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html = None if plain is not None else msg.get_body(preferencelist=("html",))
    except Exception:  # noqa: BLE001 - malformed MIME reads as having no text
        return ""
    if plain is not None:
        return _decoded(plain)
    return html_to_text(_decoded(html)) if html is not None else ""  # quotes as "> " lines


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    return decode_text(payload if isinstance(payload, bytes) else b"", part.get_content_charset())


def decode_text(data: bytes, charset: str | None) -> str:
    """Text in its declared charset, else UTF-8, else Latin-1; control characters dropped."""
    for name in (charset, "utf-8", "latin-1"):
        if name:
            try:
                return _CONTROL.sub("", data.decode(name))
            except (LookupError, ValueError):  # ValueError: a NUL in the charset name
                continue
    return _CONTROL.sub("", data.decode("latin-1"))
