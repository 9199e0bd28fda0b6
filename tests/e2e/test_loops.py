"""No loops (SPEC 6, issue 10): every copy carries the list's marker; a post that carries it,
too many Received: lines or Auto-Submitted, or an auto-responder's answers, is held."""

from __future__ import annotations

import itertools

import pytest
from sqlmodel import select

from listserv.server import Server
from listserv.store.tables import Post
from tests.conftest import DOMAIN, Sink, add_members, asend, make_message, settled

LIST = f"networking@{DOMAIN}"
FRIENDS = f"friends@{DOMAIN}"
ANN = "ann@example.com"
BOB = "bob@example.net"
OWNER = "owner@example.org"
FRIENDS_LIST = """
[lists.friends]
title = "Friends"
owners = ["owner@example.org"]
posting = "open"
"""
ROUNDS = 12  # far more than any of these loops may go round


def posts(srv: Server) -> list[Post]:
    with srv.store.session() as s:
        return list(s.exec(select(Post).order_by(Post.id)))


def add_friend(srv: Server, address: str) -> None:
    """A member of the second list, straight into the store."""
    from datetime import UTC, datetime

    from listserv.store import members

    with srv.store.session() as s:
        m = members.upsert_member(s, "friends", address, datetime.now(UTC), status="pending")
        members.activate(s, m, datetime.now(UTC), "test")


async def relay_round(srv: Server, sink: Sink, answer) -> int:  # type: ignore[no-untyped-def]
    """Play the world once: copies to our own domain go back in (as an MTA would deliver
    them), and answer(copy) may write back for a member; returns how many went in."""
    await settled(srv)
    copies = list(sink.messages)
    sink.clear()
    sent = 0
    for copy in copies:
        if copy.rcpt.endswith(f"@{DOMAIN}"):
            await asend(srv.smtp_port, copy.mail_from, copy.rcpt, copy.raw)
            sent += 1
        elif (raw := answer(copy)) is not None:
            await asend(srv.smtp_port, copy.rcpt, LIST, raw)
            sent += 1
    return sent


async def rounds_until_quiet(srv: Server, sink: Sink, answer=lambda copy: None) -> int:  # type: ignore[no-untyped-def]
    for n in range(1, ROUNDS + 1):
        if await relay_round(srv, sink, answer) == 0:
            return n
    raise AssertionError(f"still looping after {ROUNDS} rounds: {[p.subject for p in posts(srv)]}")


async def test_every_copy_carries_the_lists_loop_marker(server, sink):
    """X-BeenThere: NAME@domain on each post copy."""
    add_members(server, ANN, BOB)
    raw = make_message(f"From: {ANN}\nTo: {LIST}\nSubject: hello\nMessage-ID: <m1@x>\n\nhi\n")
    await asend(server.smtp_port, ANN, LIST, raw)
    await settled(server)
    assert [m.msg["X-BeenThere"] for m in sink.to(BOB)] == [LIST]


async def test_two_lists_subscribed_to_each_other_end_with_a_held_post(server_factory, sink):
    """A post without Message-ID goes round networking -> friends -> networking once, then is held."""
    srv = await server_factory(list_extra=FRIENDS_LIST)
    add_members(srv, ANN, FRIENDS)
    add_friend(srv, LIST)
    raw = make_message(f"From: {ANN}\nTo: {LIST}\nSubject: round and round\n\nhi\n")
    await asend(srv.smtp_port, ANN, LIST, raw)

    await rounds_until_quiet(srv, sink)

    statuses = [(p.list_name, p.status) for p in posts(srv)]
    assert statuses == [("networking", "accepted"), ("friends", "accepted"), ("networking", "held")]
    assert "loop" in posts(srv)[-1].reason


def responder(kind: str):  # type: ignore[no-untyped-def]
    """Bob's out-of-office: answers every list copy to the list (its Reply-To), once each."""
    ids = itertools.count(1)

    def answer(copy):  # type: ignore[no-untyped-def]
        if copy.rcpt != BOB:
            return None
        msg = copy.msg
        head = {
            "auto-submitted": "Auto-Submitted: auto-replied\nSubject: Re: ",
            "subject": "Subject: Automatic reply: ",
            "nothing": "Subject: Re: ",
        }[kind]
        return make_message(
            f"From: Bob <{BOB}>\nTo: {LIST}\n{head}{msg['Subject']}\n"
            f"Message-ID: <ooo-{next(ids)}@example.net>\nIn-Reply-To: {msg['Message-ID']}\n\n"
            "I am out of the office until Monday.\n"
        )

    return answer


@pytest.mark.parametrize("kind", ["auto-submitted", "subject", "nothing"])
async def test_members_auto_responder_answering_the_list_ends(server, sink, kind):
    """An out-of-office answering each copy ends with a held post, with or without Auto-Submitted."""
    add_members(server, ANN, BOB)
    raw = make_message(
        f"From: {ANN}\nTo: {LIST}\nSubject: hello\nMessage-ID: <p1@example.com>\n\nhi\n"
    )
    await asend(server.smtp_port, ANN, LIST, raw)

    await rounds_until_quiet(server, sink, responder(kind))

    statuses = [p.status for p in posts(server)]
    assert statuses[-1] == "held" and statuses.count("held") == 1
    assert len(statuses) <= 4  # the post, then at most two answers before the hold


async def test_post_with_too_many_received_lines_is_held(server, sink):
    """26 Received: lines mean a loop somewhere: held for the owners, never distributed."""
    add_members(server, ANN, BOB)
    hops = "".join(f"Received: from hop{n}.example by hop{n + 1}.example\n" for n in range(26))
    raw = make_message(f"{hops}From: {ANN}\nTo: {LIST}\nSubject: hops\nMessage-ID: <h@x>\n\nhi\n")
    await asend(server.smtp_port, ANN, LIST, raw)
    await settled(server)
    assert [p.status for p in posts(server)] == ["held"]
    assert sink.to(BOB) == [] and sink.to(ANN) == []
    assert len(sink.to(OWNER)) == 1
