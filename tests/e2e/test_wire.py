"""listserv.wire against a loopback relay offering PIPELINING and CHUNKING (as Postfix does)."""

from __future__ import annotations

import asyncio

import pytest

from listserv import wire


class ChunkingRelay:
    """Just enough of an ESMTP server: EHLO with PIPELINING and CHUNKING, MAIL, RCPT, BDAT LAST,
    RSET, QUIT; refuses RCPT to addresses starting 'bad'."""

    def __init__(self, chunking: bool = True) -> None:
        self.messages: list[tuple[str, str, bytes]] = []
        self.commands: list[bytes] = []
        self.chunking = chunking
        self.discarded = 0  # messages cut off by the client closing the connection
        self.early = 0  # messages whose end came with the next command (pipelined after it)
        self.slow_first = 0.0  # seconds the answer to the first message takes (a slow relay)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay ESMTP\r\n")
        sender = rcpt = ""
        while line := await reader.readline():
            self.commands.append(line.rstrip())
            verb = line[:4].upper()
            if verb == b"EHLO":
                last = b"CHUNKING" if self.chunking else b"8BITMIME"
                writer.write(
                    b"250-relay\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 " + last + b"\r\n"
                )
            elif verb == b"MAIL":
                sender = line.decode().split("<", 1)[1].split(">", 1)[0]
                writer.write(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                rcpt = line.decode().split("<", 1)[1].split(">", 1)[0]
                writer.write(b"550 5.1.1 no\r\n" if rcpt.startswith("bad") else b"250 2.1.5 Ok\r\n")
            elif verb == b"BDAT":
                data = await reader.readexactly(int(line.split()[1]))
                if rcpt.startswith("bad"):
                    writer.write(b"554 5.5.1 no valid recipients\r\n")
                else:
                    self.messages.append((sender, rcpt, data))
                    await self._slow()
                    writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"DATA":
                if rcpt.startswith("bad"):
                    writer.write(b"554 5.5.1 no valid recipients\r\n")
                    continue
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                lines = []
                while (body := await reader.readline()) != b".\r\n":
                    if not body:  # the client hung up mid-message: the copy is discarded
                        self.discarded += 1
                        writer.close()
                        return
                    lines.append(body[1:] if body.startswith(b".") else body)
                self.messages.append((sender, rcpt, b"".join(lines)))
                # commands already waiting (before this reply): sent with the message's end
                self.early += bool(reader._buffer)  # type: ignore[attr-defined]
                await self._slow()
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == b"RSET":
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 Bye\r\n")
                break
            await writer.drain()
        writer.close()

    async def _slow(self) -> None:
        if self.slow_first and len(self.messages) == 1:
            await asyncio.sleep(self.slow_first)


@pytest.fixture(params=[True, False], ids=["chunking", "pipelining"])
async def relay(request):  # type: ignore[no-untyped-def]
    fake = ChunkingRelay(chunking=request.param)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    yield fake
    server.close()


async def test_relay_gets_the_message_intact_by_bdat_or_pipelined_data(relay):
    """With CHUNKING the copy goes as BDAT n LAST (leading dots as they are); without it, as
    pipelined MAIL/RCPT/DATA and a dot-stuffed body. Either way it arrives with CRLF intact."""
    conn = await wire.Connection.open("127.0.0.1", relay.port)
    await conn.send("l-bounces+a=x.org@lists.test", "a@x.org", b"Subject: hi\n\n.dot\nend\n")
    await conn.quit()
    assert relay.messages == [
        ("l-bounces+a=x.org@lists.test", "a@x.org", b"Subject: hi\r\n\r\n.dot\r\nend\r\n")
    ]
    assert (b"BDAT 26 LAST" in relay.commands) == relay.chunking
    assert (b"DATA" in relay.commands) != relay.chunking


async def test_ready_is_awaited_before_the_message_goes_out(relay):
    """The previous copy's commit (ready) completes before this copy's message is written."""
    conn = await wire.Connection.open("127.0.0.1", relay.port)
    ready = asyncio.get_running_loop().create_future()
    sending = asyncio.ensure_future(
        conn.send("s@lists.test", "a@x.org", b"S: x\r\n\r\nb\r\n", ready)
    )
    await asyncio.sleep(0.2)
    assert relay.messages == [] and not sending.done()
    ready.set_result(None)
    await sending
    await conn.quit()
    assert [rcpt for _, rcpt, _ in relay.messages] == ["a@x.org"]


async def test_refused_recipient_raises_its_code_and_the_connection_goes_on(relay):
    """A 550 at RCPT is raised as Refused(550) after a RSET; the next copy on it is delivered."""
    conn = await wire.Connection.open("127.0.0.1", relay.port)
    with pytest.raises(wire.Refused) as refused:
        await conn.send("s@lists.test", "bad@x.org", b"Subject: one\r\n\r\nbody\r\n")
    assert refused.value.code == 550
    await conn.send("s@lists.test", "good@x.org", b"Subject: two\r\n\r\nbody\r\n")
    await conn.quit()
    assert [rcpt for _, rcpt, _ in relay.messages] == ["good@x.org"]
    assert b"RSET" in relay.commands


async def test_a_relay_that_stops_answering_is_dropped_after_the_timeout(monkeypatch):
    """A relay that greets, answers EHLO, then never answers MAIL: the watchdog ends the
    connection once the reply is TIMEOUT overdue, and the copy fails as Dropped (retried)."""
    monkeypatch.setattr(wire, "TIMEOUT", 0.3)
    monkeypatch.setattr(wire, "WATCH", 0.05)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay ESMTP\r\n")
        await reader.readline()
        writer.write(b"250-relay\r\n250 PIPELINING\r\n")
        await reader.read(1)  # then silence until the client gives up
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await wire.Connection.open("127.0.0.1", port)
        with pytest.raises(wire.Dropped, match="no reply from the relay within 0.3 s"):
            await asyncio.wait_for(conn.send("s@lists.test", "m@x.org", b"S: x\r\n\r\nb\r\n"), 10)
        conn.close()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("answer", "says"),
    [(b"250-" + b"x" * 70_000, "a line over 65536 bytes"), (b"250 half a li", "closed")],
    ids=["endless line", "cut short"],
)
async def test_a_reply_that_never_ends_its_line_drops_the_connection(answer, says):
    """A greeting line over 64 KB, or one cut off by the relay closing: Dropped, not a hang."""

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(broken, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(wire.Dropped, match=says):
            await asyncio.wait_for(wire.Connection.open("127.0.0.1", port), 10)
    finally:
        server.close()


async def seen(relay: ChunkingRelay, command: bytes, within: float) -> bool:
    """Whether the relay gets command within the given seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while command not in relay.commands and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return command in relay.commands


COPY = b"Subject: hi\r\n\r\nbody\r\n"


async def test_the_next_copy_s_envelope_goes_out_with_this_message_s_end(relay):
    """Told the copy that follows (then=), a relay with PIPELINING but no CHUNKING gets that
    copy's MAIL, RCPT and DATA right after this message's end, before its send() is called
    (RFC 2920 3.1); with CHUNKING nothing goes early. Both copies arrive intact."""
    conn = await wire.Connection.open("127.0.0.1", relay.port)
    await conn.send("s@lists.test", "a@x.org", COPY, then=("s@lists.test", "b@x.org", COPY))
    early = await seen(relay, b"RCPT TO:<b@x.org>", 2.0 if not relay.chunking else 0.2)
    assert early != relay.chunking
    await conn.send("s@lists.test", "b@x.org", COPY)
    await conn.quit()
    assert relay.messages == [("s@lists.test", "a@x.org", COPY), ("s@lists.test", "b@x.org", COPY)]
    assert relay.commands.count(b"MAIL FROM:<s@lists.test> SIZE=21") == 2


async def test_an_announced_copy_refused_at_rcpt_fails_alone(relay):
    """The announced copy's 550 is raised by its own send(), after a RSET; the copy after it
    is delivered."""
    conn = await wire.Connection.open("127.0.0.1", relay.port)
    await conn.send("s@lists.test", "a@x.org", COPY, then=("s@lists.test", "bad@x.org", COPY))
    with pytest.raises(wire.Refused) as refused:
        await conn.send("s@lists.test", "bad@x.org", COPY, then=("s@lists.test", "c@x.org", COPY))
    assert refused.value.code == 550
    await conn.send("s@lists.test", "c@x.org", COPY)
    await conn.quit()
    assert [rcpt for _, rcpt, _ in relay.messages] == ["a@x.org", "c@x.org"]


@pytest.mark.parametrize("then_what", ["another copy", "reset", "quit"])
async def test_a_connection_left_waiting_for_an_announced_copy_never_sends_it_empty(then_what):
    """The relay waits for the announced copy's message, so anything else would be taken as
    its text: sending another copy raises Dropped, a reset raises Dropped, quit just hangs up.
    Either way the connection is closed, the relay discards the unfinished copy, and nothing
    arrives but the first copy."""
    fake = ChunkingRelay(chunking=False)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await wire.Connection.open("127.0.0.1", port)
        await conn.send("s@lists.test", "a@x.org", COPY, then=("s@lists.test", "b@x.org", COPY))
        assert await seen(fake, b"DATA", 2.0) and fake.commands.count(b"DATA") == 2
        if then_what == "another copy":
            with pytest.raises(wire.Dropped, match="announced"):
                await conn.send("s@lists.test", "c@x.org", COPY)
        elif then_what == "reset":
            with pytest.raises(wire.Dropped, match="waits for the message"):
                await conn.reset()
        else:
            await asyncio.wait_for(conn.quit(), 2)
        for _ in range(200):
            if fake.discarded:
                break
            await asyncio.sleep(0.01)
        assert fake.discarded == 1
        assert [rcpt for _, rcpt, _ in fake.messages] == ["a@x.org"]
        assert b"RSET" not in fake.commands and b"QUIT" not in fake.commands
    finally:
        server.close()


async def test_a_kept_relay_left_waiting_for_an_announced_copy_starts_afresh():
    """A pass ended with a copy announced but never sent (another connection found the relay
    down, say); the next pass's first copy on that relay goes out on a new connection and
    arrives, and the unsent one is discarded by the relay, not sent empty."""
    from listserv.delivery import WireRelay

    fake = ChunkingRelay(chunking=False)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        relay = WireRelay("127.0.0.1", port)
        told = await relay.send("s@l.test", "a@x.org", COPY, 1, then=("s@l.test", "b@x.org", COPY))
        assert told
        relay.kept()  # the pass ends
        assert not await relay.send("s@l.test", "c@x.org", COPY, 2)
        await relay.close()
        assert [rcpt for _, rcpt, _ in fake.messages] == ["a@x.org", "c@x.org"]
        assert fake.discarded == 1 and b"RSET" not in fake.commands
    finally:
        server.close()


async def test_a_send_cancelled_after_the_354_never_turns_commands_into_message_text():
    """Cancelled while it waits for the previous copy's commit (after the relay's 354), a send
    leaves the relay expecting a message. The relay is not reset or sent anything more on that
    connection: the next copy goes out on a new one, and the cut-off copy is discarded."""
    from listserv.delivery import WireRelay

    fake = ChunkingRelay(chunking=False)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        relay = WireRelay("127.0.0.1", port)
        await relay.send("s@l.test", "a@x.org", COPY, 1)
        ready = asyncio.get_running_loop().create_future()
        sending = asyncio.ensure_future(relay.send("s@l.test", "b@x.org", COPY, 2, ready))
        assert await seen(fake, b"RCPT TO:<b@x.org>", 2.0)
        await asyncio.sleep(0.1)  # the 354 comes back; the send waits for ready
        assert fake.commands.count(b"DATA") == 2 and not sending.done()
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        relay.kept()
        await asyncio.wait_for(relay.send("s@l.test", "c@x.org", COPY, 3), 5)
        await relay.close()
        assert [rcpt for _, rcpt, _ in fake.messages] == ["a@x.org", "c@x.org"]
        assert fake.discarded == 1 and b"RSET" not in fake.commands
    finally:
        server.close()
