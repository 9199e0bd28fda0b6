"""help, info, command parsing, loop safety, the reply cap, and every template rendering."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from listserv.commands import COMMANDS, command_lines
from listserv.config import Site
from listserv.digest.build import PulseLine
from listserv.render import render_reply, render_text, template_dir
from listserv.server import Server
from listserv.store.tables import Inbound, Member, Post
from tests.conftest import (
    DOMAIN,
    add_members,
    asend,
    mails_to,
    make_config,
    make_message,
    member,
    settled,
)

REQUEST = f"networking-request@{DOMAIN}"
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


async def test_help_reply_lists_every_command(server, sink):
    """'help' answers with one mail naming every registered command's usage and summary."""
    await send(server, ANN, "help")
    reply = (await mails_to(sink, ANN))[0]
    body = reply.get_content()
    assert reply["Subject"] == "Commands for Tri-County Job Seekers Networking"
    for cmd in COMMANDS.values():
        assert cmd.usage in body and cmd.summary in body


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


async def test_mail_without_commands_gets_the_help_text(server, sink):
    """A message with no command in it is answered with the command list, saying why."""
    await send(server, ANN, "Hello", "Can someone tell me how this works?")
    reply = (await mails_to(sink, ANN))[0]
    assert reply["Subject"].startswith("Commands for")
    assert "couldn't find a command" in reply.get_content()


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
    assert reply["Subject"].startswith("About ")


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
    for reply in await mails_to(sink, ANN, 3):
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


# ---------------------------------------------------------------- templates


def _samples(tmp_path: Path) -> dict[str, dict]:
    """A sample context for every template, as the code that renders it passes one."""
    cfg = make_config(tmp_path)
    lst, site = cfg.lists["networking"], Site.of(cfg.server)
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    mem = Member(
        list_name="networking",
        address=ANN,
        token="t0k3n",
        created_at=now,
        status="active",
        bounce_score=5.0,
    )
    post = Post(
        id=7,
        list_name="networking",
        sender=ANN,
        from_header=f"Ann Lee <{ANN}>",
        subject="Anyone hiring?",
        received_at=now,
        raw=b"",
    )
    links = {
        "unsubscribe_url": f"{site.base_url}/u/t0k3n",
        "leave_address": f"networking-leave+t0k3n@{DOMAIN}",
    }
    confirm = {
        "token": "c0de",
        "confirm_address": f"networking-confirm+c0de@{DOMAIN}",
        "confirm_url": f"{site.base_url}/c/c0de",
        "days": 7,
    }
    base = {"lst": lst, "site": site, "request": REQUEST, "post_address": f"networking@{DOMAIN}"}
    topics = [{"number": 1, "subject": "Anyone hiring?", "name": "Ann Lee"}]
    digest = {
        "title": lst.display_title,
        "heading": "Weekly digest, 23 Nov 2026 (1 message)",
        "count_text": "1 message",
        "span": "on 23 Nov 2026",
        "date": "23 Nov 2026",
        "request_address": REQUEST,
        "topics": topics,
    }
    samples: dict[str, dict] = {
        "admin/approve_join.txt": {"address": ANN, **confirm},
        "admin/bounce_report.txt": {"member": mem, "last_error": "550 5.1.1 no such user"},
        "admin/delivery_failed.txt": {"recipient": ANN, "error": "451 try later"},
        "admin/held.txt": {"post": post, "reason": "not a member"},
        "admin/inbound_parked.txt": {
            "inbound_id": 7,
            "mail_from": ANN,
            "from_header": f"Ann <{ANN}>",
            "subject": "Hello",
            "error": "RecursionError: maximum recursion depth exceeded",
            "attempts": 5,
        },
        "commands/help.txt": {"commands": sorted(COMMANDS.values(), key=lambda c: c.name)},
        "commands/info.txt": {"member": mem, "policy": "members may post"},
        "commands/results.txt": {"results": [("join", "Almost done."), ("", "Done.")]},
        "member/alumni_welcome.txt": {"member": mem, "found_work": True, **links},
        "member/bad_token.txt": {},
        "member/confirm_join.txt": {**confirm, "delivery": "digest"},
        "member/confirm_leave.txt": {**confirm, "reason": "asked to leave"},
        "member/disabled.txt": {"member": mem},
        "member/goodbye.txt": {"member": mem},
        "member/held.txt": {"subject": "Anyone hiring?", "reason": "not a member"},
        "member/job_ask.txt": {
            **confirm,
            "reason": "found work: got a job",
            "alumni_url": f"{site.base_url}/c/a1umni",
        },
        "member/probe.txt": {"member": mem},
        "member/rejected.txt": {"subject": "Anyone hiring?", "reason": "only members may post"},
        "member/welcome.txt": {"member": mem, "delivery_words": "every post", **links},
        "digest/plain.txt": {
            **digest,
            "messages": [
                {"headers": [("From", "Ann Lee"), ("Subject", "Hi")], "body": "Hello all."}
            ],
        },
        "digest/toc.txt": digest,
        "digest/alumni.txt": {
            "title": lst.display_title,
            "span": "from 1 Oct 2026 to 1 Nov 2026",
            "highlights": [
                {"subject": "Anyone hiring?", "replies": 2, "excerpt": "Acme is hiring."}
            ],
            "pulse": [PulseLine("Posts about hiring", "12", "fewer than 3", "up")],
            "now_word": "this month",
            "before_word": "last month",
            "list_address": f"networking@{DOMAIN}",
            "request_address": REQUEST,
        },
        "web/page.html": {
            "title": "Leave?",
            "paragraphs": ("Press the button.",),
            "button": "Unsubscribe",
            "action": "/u/t0k3n",
            "fields": (("List-Unsubscribe", "One-Click"),),
            "footer": "Opening this page changes nothing.",
        },
    }
    return {
        name: {**base, **ctx} if name.split("/")[0] in ("admin", "commands", "member") else ctx
        for name, ctx in samples.items()
    }


def test_every_template_renders_with_sample_context(tmp_path):
    """Every template renders with StrictUndefined; mail templates start with a Subject line."""
    root = template_dir()
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    samples = _samples(tmp_path)
    assert set(names) == set(samples), "add a sample context here for each new template"
    for name in names:
        ctx = samples[name]
        if name.split("/")[0] in ("admin", "commands", "member"):
            msg = render_reply(name, sender=REQUEST, to=ANN, domain=DOMAIN, **ctx)
            assert msg["Subject"].strip(), name
            text = msg.get_content()
        else:
            text = render_text(name, **ctx)
        assert text.strip() and "{{" not in text and "{%" not in text, name
        assert "None" not in text, f"{name} shows a missing value as 'None'"
