"""A small SMTP client for delivery to a plain smtp:// relay: a copy is one write where the
relay offers PIPELINING and CHUNKING (envelope and BDAT); with PIPELINING alone (RFC 2920) the
next copy's envelope follows each message's end, so a copy is still one write and one read.

aiosmtplib writes each command on its own and parses both addresses with the email package
for every copy; on loopback the send syscalls alone were ~40% of listserv's CPU per copy
(cProfile of bench/fanout.py, issue 12). TLS and AUTH relays keep aiosmtplib (delivery.py).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable

TIMEOUT = 60.0  # seconds per reply, as aiosmtplib's default
MAX_LINE = 65536  # bytes of one reply line (asyncio's readline limit)
WATCH = 5.0  # seconds between a connection's checks for a reply overdue by TIMEOUT
_UNSAFE = re.compile(rb"[\x00-\x20<>]")  # never on an SMTP command line


class Refused(Exception):
    """The relay answered code (4xx or 5xx) for this copy."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}".strip())
        self.code = code


class Dropped(Exception):
    """The connection failed or the relay answered nonsense."""


def crlf(data: bytes) -> bytes:
    r"""data with CRLF line ends (most messages already have them: then two counts, no copy).

    >>> crlf(b"a\nb\rc\r\n")
    b'a\r\nb\r\nc\r\n'
    """
    if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    return data


def stuffed(data: bytes) -> bytes:
    r"""CRLF data as DATA sends it: leading dots doubled, ending in CRLF.CRLF.

    >>> stuffed(b"a\r\n.b\r\nc")
    b'a\r\n..b\r\nc\r\n.\r\n'
    """
    if data.startswith(b".") or b"\n." in data:
        data = (b"." if data.startswith(b".") else b"") + data.replace(b"\n.", b"\n..")
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


class Connection:
    """One connection to a relay: connect (greeting, EHLO), then send() one copy at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.extensions: set[str] = set()
        self.buffer = b""  # what the relay sent past the last reply line read
        self.loop = asyncio.get_running_loop()
        self.waiting_since: float | None = None  # loop time the replies awaited were asked for
        self.overdue = False  # the watchdog ended the connection: a reply took over TIMEOUT
        # (sender, rcpt, MAIL/RCPT/DATA) of the next copy, sent with the last message's end;
        # their replies are unread, and the relay waits for that copy's message (send()).
        self.announced: tuple[str, str, bytes] | None = None
        # A send() that ended other than by returning or Refused (cancelled, say, while it
        # waited for ready after the relay's 354): what the relay expects next is unknown.
        self.unsettled = False
        self._watch = self.loop.call_later(WATCH, self._check)

    @classmethod
    async def open(cls, host: str, port: int, helo_name: str = "") -> Connection:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
        conn = cls(reader, writer)
        try:
            code, text = await conn.reply()
            if code != 220:
                raise Refused(code, text)
            conn.writer.write(f"EHLO {helo_name or socket.getfqdn()}\r\n".encode())
            code, text = await conn.reply()
            if code != 250:
                raise Refused(code, text)
        except BaseException:
            conn.close()
            raise
        conn.extensions = {line.split()[0].upper() for line in text.splitlines()[1:] if line}
        return conn

    async def reply(self) -> tuple[int, str]:
        return (await self.replies(1))[0]

    async def replies(self, n: int) -> list[tuple[int, str]]:
        """The next n replies (a pipelined group). A watchdog (every WATCH seconds) ends the
        connection when they are TIMEOUT overdue: a timeout per group was still a tenth of
        delivery's CPU per copy, a timer per reply more (issue 12)."""
        self.waiting_since = self.loop.time()
        try:
            return [await self._read_reply() for _ in range(n)]
        except (OSError, asyncio.IncompleteReadError, Dropped) as exc:
            if self.overdue:
                raise Dropped(f"no reply from the relay within {TIMEOUT:g} s") from None
            if isinstance(exc, Dropped):
                raise
            raise Dropped(str(exc) or type(exc).__name__) from None
        finally:
            self.waiting_since = None

    def _check(self) -> None:
        since = self.waiting_since
        if since is not None and self.loop.time() - since > TIMEOUT:
            self.overdue = True
            self.writer.transport.abort()  # the awaited read fails at once: Dropped
            return
        if not self.writer.transport.is_closing():
            self._watch = self.loop.call_later(WATCH, self._check)

    async def _read_reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = await self._line()
            if len(line) < 4 or not line[:3].isdigit():
                raise Dropped(f"relay answered {line[:80]!r}")
            lines.append(line[4:].rstrip(b"\r\n").decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    async def _line(self) -> bytes:
        """The next line the relay sent, LF included; the socket is read a chunk at a time, as
        a pipelined group's replies come in one segment (readline() per line cost more)."""
        while (end := self.buffer.find(b"\n")) == -1:
            if len(self.buffer) > MAX_LINE:
                raise Dropped(f"relay answered a line over {MAX_LINE} bytes")
            chunk = await self.reader.read(65536)
            if not chunk:
                raise Dropped(f"relay answered {self.buffer[:80]!r} and closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
        return line

    @property
    def mid_message(self) -> bool:
        """Whether the relay may be waiting for a copy's message: anything written now could be
        taken as its text."""
        return self.announced is not None or self.unsettled

    def waits_for_other(self, sender: str, rcpt: str) -> bool:
        """Whether the relay may wait for a message other than this copy's (send() would
        refuse it: Dropped)."""
        return self.unsettled or (
            self.announced is not None and self.announced[:2] != (sender, rcpt)
        )

    def _envelope(self, sender: str, rcpt: str, data: bytes) -> bytes:
        """MAIL FROM and RCPT TO for one copy of data (CRLF line ends); Refused if unsafe."""
        mail_from, rcpt_to = sender.encode(), rcpt.encode("utf-8")
        if _UNSAFE.search(mail_from) or _UNSAFE.search(rcpt_to):
            raise Refused(553, f"address unsafe on an SMTP command line: {rcpt!r}")
        options = b""
        if "SIZE" in self.extensions:
            options += b" SIZE=%d" % len(data)
        if not rcpt.isascii():
            if "SMTPUTF8" not in self.extensions:
                raise Refused(553, "the relay does not offer SMTPUTF8 for a non-ASCII address")
            options += b" SMTPUTF8"
        return b"MAIL FROM:<%s>%s\r\nRCPT TO:<%s>\r\n" % (mail_from, options, rcpt_to)

    async def send(
        self,
        sender: str,
        rcpt: str,
        data: bytes,
        ready: Awaitable[None] | None = None,
        *,
        normalised: bool = False,
        then: tuple[str, str, bytes] | None = None,
    ) -> None:
        """One transaction; Refused names the first bad reply. ready, when given, is awaited
        before the message goes out (delivery's commit of the previous copy). normalised: data
        (and then's) already has CRLF line ends only (crlf() was applied). then: the copy this
        connection sends next, (sender, rcpt, data), when the caller knows it; the next send()
        must be that copy.

        With PIPELINING and CHUNKING (RFC 3030, Postfix has both) the envelope and the whole
        message go out in one write as BDAT ... LAST, after ready. With PIPELINING alone,
        MAIL/RCPT/DATA are one write and the body a second, after ready; the next copy's
        MAIL/RCPT/DATA go out with the end of this body (RFC 2920 3.1), so a copy costs one
        write and one read. Without PIPELINING, a command at a time."""
        if self.unsettled:
            self.close()
            raise Dropped("an earlier copy on this connection was cut off mid-transaction")
        if not normalised:
            data = crlf(data)
        envelope = self._envelope(sender, rcpt, data)
        self.unsettled = True
        try:
            await self._transaction(envelope, data, ready, then, normalised)
        except Refused:  # raised only once every reply was read: the connection is in step
            self.unsettled = False
            raise
        self.unsettled = False

    async def _transaction(
        self,
        envelope: bytes,
        data: bytes,
        ready: Awaitable[None] | None,
        then: tuple[str, str, bytes] | None,
        normalised: bool,
    ) -> None:
        if "PIPELINING" in self.extensions and "CHUNKING" in self.extensions:
            # One write per copy: the relay's replies to MAIL and RCPT are read after BDAT's
            # anyway, so writing the envelope before ready saved no time, only a send syscall.
            if ready is not None:
                await ready
            self.writer.write(b"".join([envelope, b"BDAT %d LAST\r\n" % len(data), data]))
            replies = await self.replies(3)
            bad = next(((c, t) for c, t in replies if c >= 400), None)
            if bad is None:
                return
            await self._reset()
            raise Refused(*bad)
        commands = envelope + b"DATA\r\n"
        if "PIPELINING" in self.extensions:
            announced, self.announced = self.announced, None
            if announced is None:
                self.writer.write(commands)
            elif announced[2] != commands:  # the relay waits for another copy's message
                self.close()
                raise Dropped("the copy announced on this connection was not sent next")
            replies = await self.replies(3)
        else:
            replies = []
            for command in commands.splitlines(keepends=True):
                self.writer.write(command)
                replies.append(await self.reply())
                if replies[-1][0] >= 400:
                    break
        bad = next(((c, t) for c, t in replies if c >= 400), None)
        if bad is None and replies[-1][0] == 354:
            if ready is not None:
                await ready
            following = self._announce(then, normalised) if "PIPELINING" in self.extensions else b""
            self.writer.write(stuffed(data) + following)
            self.announced = (then[0], then[1], following) if then and following else None
            code, text = await self.reply()
            if code == 250:
                return
            raise Refused(code, text)
        if replies[-1][0] == 354:  # DATA accepted despite a refusal before it: end it empty
            self.writer.write(b".\r\n")
            await self.reply()
        await self._reset()
        raise Refused(*(bad or replies[-1]))

    def _announce(self, then: tuple[str, str, bytes] | None, normalised: bool) -> bytes:
        """The next copy's MAIL/RCPT/DATA, to follow this message's end; b"" if there is none
        or its envelope would be refused (its own send() says so then)."""
        if then is None:
            return b""
        sender, rcpt, data = then
        try:
            return self._envelope(sender, rcpt, data if normalised else crlf(data)) + b"DATA\r\n"
        except Refused:
            return b""

    async def _reset(self) -> None:
        self.writer.write(b"RSET\r\n")
        await self.reply()

    async def reset(self) -> None:
        """RSET, answered 250: the connection is still good for another copy (Dropped if not,
        or if the relay may wait for a copy's message, where RSET would be its text)."""
        if self.mid_message:
            self.close()
            raise Dropped("the relay waits for the message of an earlier copy")
        self.writer.write(b"RSET\r\n")
        code, text = await self.reply()
        if code != 250:
            raise Refused(code, text)

    async def quit(self) -> None:
        if self.mid_message:  # QUIT could be message text: hang up,
            self.close()  # and the relay discards the unfinished transaction
            return
        try:
            self.writer.write(b"QUIT\r\n")
            await self.reply()
        except (Dropped, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        self._watch.cancel()
        self.writer.close()
