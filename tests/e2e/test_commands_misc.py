"""help, info, command parsing, loop safety and the reply cap (templates: unit/test_templates)."""

from __future__ import annotations

import itertools

import pytest
from sqlmodel import select

from listserv.commands import COMMANDS, command_lines
from listserv.server import Server
from listserv.store.tables import Inbound
from tests.conftest import (
    DOMAIN,
    add_members,
    asend,
    mails_to,
    make_message,
    member,
    settled,
)

REQUEST = f"networking-request@{DOMAIN}"
LIST = f"networking@{DOMAIN}"
ANN = "ann@example.com"
BOB = "bob@example.net"
LIST_ID = "Tri-County Job Seekers Networking <networking.lists.example.org>"
_ids = itertools.count(1)


def message(sender: str, to: str, subject: str, body: str = "", headers: str = "") -> bytes:
    return make_message(
        f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
        f"Message-ID: <misc-{next(_ids)}@example.com>\n{headers}\n{body}\n"
    )


async def send(
    srv: Server,
    sender: str,
    subject: str,
    body: str = "",
    headers: str = "",
    mail_from: str | None = None,
    to: str = REQUEST,
) -> None:
    raw = message(sender, to, subject, body, headers)
    await asend(srv.smtp_port, sender if mail_from is None else mail_from, to, raw)


# ---------------------------------------------------------------- help and info


async def test_help_reply_lists_every_command_a_member_can_use(server, sink):
    """'help' answers with one mail naming each member command's usage, but not 'confirm'."""
    await send(server, ANN, "help")
    reply = (await mails_to(sink, ANN))[0]
    body = reply.get_content()
    assert reply["Subject"] == "Re: your request to Tri-County Job Seekers Networking"
    for cmd in COMMANDS.values():
        if cmd.name != "confirm":
            assert cmd.usage in body and cmd.summary in body
    assert "confirm TOKEN" not in body
    assert max(len(line) for line in body.splitlines()) <= 78


async def test_help_and_info_in_one_mail_get_one_reply(server, sink):
    """A mail with 'help' and 'info' gets one reply holding both answers (SPEC 5)."""
    add_members(server, ANN)
    await send(server, ANN, "help", "info")
    reply = (await mails_to(sink, ANN))[0]
    await settled(server)
    assert len(sink.to(ANN)) == 1
    body = reply.get_content()
    assert "> help" in body and "> info" in body
    assert "join [digest|alumni]" in body and "members may post" in body
    assert "separate message" not in body


def test_every_command_has_usage_and_help_text():
    """Each registered command has a usage starting with its name and a one-sentence summary."""
    spec = {
        "join",
        "leave",
        "confirm",
        "digest",
        "regular",
        "alumni",
        "back",
        "help",
        "info",
        "end",
    }
    assert spec <= set(COMMANDS)
    for name, cmd in COMMANDS.items():
        assert cmd.usage.split()[0] == name
        assert cmd.summary and cmd.summary[0].isupper() and cmd.summary.endswith((".", "!")), name
        assert cmd.run.__module__ == f"listserv.commands.{name}", "one module per command"


async def test_info_reply_has_title_description_policy_and_status(server, sink):
    """'info' tells the list's title, description, posting policy and the sender's own status."""
    add_members(server, ANN, delivery="digest")
    await send(server, ANN, "info")
    body = (await mails_to(sink, ANN))[0].get_content()
    assert "Tri-County Job Seekers Networking" in body
    assert "Leads and encouragement." in body
    assert "members may post" in body
    assert "member, digest delivery" in body


async def test_info_for_a_stranger_says_how_to_join(server, sink):
    """A non-member asking 'info' is told they are not a member and how to join."""
    await send(server, BOB, "info")
    body = (await mails_to(sink, BOB))[0].get_content()
    assert "not a member" in body and REQUEST in body


async def test_a_thank_you_gets_a_short_kind_answer_not_the_command_list(server, sink):
    """'Thank you!' in reply to a welcome is answered briefly, without the command dump."""
    add_members(server, ANN)
    await send(server, ANN, "Re: Welcome to Tri-County Job Seekers Networking", "Thank you!")
    reply = (await mails_to(sink, ANN))[0]
    await settled(server)
    assert len(sink.to(ANN)) == 1
    body = reply.get_content()
    assert "Thank you for writing" in body
    assert f"networking@{DOMAIN}" in body and f"networking-owner@{DOMAIN}" in body
    assert "couldn't find a command" not in body and "confirm TOKEN" not in body
    assert "join [digest|alumni]" not in body


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("help\nthanks!\ninfo", [["help"]]),  # a line that is not a command
        ("help\n-- \nAnn Lee\ninfo", [["help"]]),  # a signature
        ("help\n> info\ninfo", [["help"]]),  # quoted text
        ("help\nend\ninfo", [["help"], ["end"]]),  # 'end'
        ("\nhelp\n\n  INFO  \n", [["help"], ["INFO"]]),  # blank lines skipped, any case
    ],
)
def test_body_parsing_stops_at_non_command_signature_quote_and_end(body, expected):
    """Body lines are read as commands until a non-command, '-- ', '>' or 'end'."""
    assert command_lines("", body) == expected


def test_subject_command_comes_first_and_reply_prefix_is_ignored():
    """'Re: join' in the Subject is the command 'join'; a repeat in the body is one request."""
    assert command_lines("Re: join", "join\nhelp") == [["join"], ["help"]]


async def test_commands_below_a_signature_are_not_run(server, sink):
    """Through the server: 'info' then a signature holding 'help' answers only 'info'."""
    await send(server, ANN, "Commands", "info\n-- \nhelp\nAnn")
    reply = (await mails_to(sink, ANN))[0]
    await settled(server)
    assert len(sink.to(ANN)) == 1
    body = reply.get_content()
    assert "> info" in body and "> help" not in body


async def test_encoded_crlf_in_subject_argument_adds_no_header(server, sink):
    """A Subject hiding CR/LF and 'Bcc:' in an encoded word cannot add a header or a recipient."""
    await send(server, ANN, "=?utf-8?q?join=0D=0ABcc:_evil@x.org?=")
    await mails_to(sink, ANN)
    await settled(server)
    assert {m.rcpt for m in sink.messages} == {ANN}
    reply = sink.to(ANN)[0]
    head = reply.raw.split(b"\r\n\r\n", 1)[0]
    assert b"evil" not in head and b"bcc" not in head.lower()
    assert reply.msg["Bcc"] is None
    assert member(server, "evil@x.org") is None


# ---------------------------------------------------------------- loop safety and the cap


@pytest.mark.parametrize(
    ("headers", "mail_from"),
    [
        ("", ""),  # MAIL FROM:<>
        ("Auto-Submitted: auto-replied\n", ANN),
        ("Precedence: bulk\n", ANN),
        ("Precedence: list\n", ANN),
        (f"List-Id: {LIST_ID}\n", ANN),
    ],
    ids=["null-sender", "auto-submitted", "precedence-bulk", "precedence-list", "own-list-id"],
)
async def test_no_reply_to_mail_that_could_loop(server, sink, headers, mail_from):
    """No answer to a null sender, auto-submitted or bulk mail, or mail carrying our own List-Id."""
    await send(server, ANN, "help", headers=headers, mail_from=mail_from)
    await settled(server)
    with server.store.session() as s:
        assert s.exec(select(Inbound)).first().state == "done"  # type: ignore[union-attr]
    assert sink.messages == []


async def test_replies_are_marked_auto_replied(server, sink):
    """Every reply carries Auto-Submitted: auto-replied and our List-Id."""
    await send(server, ANN, "info", "help")
    for reply in await mails_to(sink, ANN):
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["List-Id"] == LIST_ID


async def test_daily_reply_cap_stops_the_third_reply(server_factory, sink):
    """max_replies_per_day = 2: the third command mail of the day gets no answer."""
    srv = await server_factory(list_extra="max_replies_per_day = 2\n")
    for _ in range(3):
        await send(srv, ANN, "help")
    await settled(srv)
    with srv.store.session() as s:
        assert all(row.state == "done" for row in s.exec(select(Inbound)))
    assert len(sink.to(ANN)) == 2


async def test_leave_cannot_name_another_address(server, sink):
    """'leave bob@...' from Ann is Ann's own leave: Bob stays and hears nothing."""
    add_members(server, ANN, BOB)
    await send(server, ANN, "leave bob@example.net")
    ask = (await mails_to(sink, ANN))[0]
    assert ask["Subject"].startswith("Please confirm: leave")
    await settled(server)
    assert sink.to(BOB) == []
    assert member(server, BOB).status == "active"  # type: ignore[union-attr]


async def test_join_cannot_name_another_address(server, sink):
    """'join bob@...' from Ann neither subscribes nor mails Bob."""
    await send(server, ANN, "join bob@example.net")
    await mails_to(sink, ANN)
    await settled(server)
    assert sink.to(BOB) == []
    assert member(server, BOB) is None
