"""The retention rules (SPEC 5) through the running server: alumni, ask, plain leave, consent."""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx
from sqlmodel import select

from listserv.server import Server
from listserv.store.tables import Event, Post
from tests.conftest import (
    DOMAIN,
    Sink,
    add_members,
    base_url,
    confirm_token,
    mails_to,
    member,
    settled,
)
from tests.conftest import send_to_list as send

REQUEST = f"networking-request@{DOMAIN}"
LEAVE = f"networking-leave@{DOMAIN}"
ANN = "ann@example.com"
BOB = "bob@example.net"
ASK = '[lists.networking.alumni]\non_job_leave = "ask"\n'


def events(srv: Server, kind: str) -> list[Event]:
    with srv.store.session() as s:
        return list(s.exec(select(Event).where(Event.kind == kind)))


def text(msg: EmailMessage) -> str:
    return msg.get_content()


async def reply_to(srv: Server, msg: EmailMessage, sender: str = ANN) -> None:
    """Answer a mail the way a mail client does: to its Reply-To, quoting it."""
    quoted = "Yes.\n\n> " + text(msg)[:60]
    await send(srv, sender, str(msg["Reply-To"]), f"Re: {msg['Subject']}", quoted)


def assert_alumni_switch(srv: Server, msg: EmailMessage, found_work: bool = True) -> None:
    """The member is alumni; the note (congratulating job-leavers) keeps leaving one step away."""
    m = member(srv, ANN)
    assert (m.status, m.delivery) == ("active", "alumni")
    body = text(msg)
    assert ("Congratulations" in msg["Subject"] + body) is found_work
    assert f"http://127.0.0.1:8080/u/{m.token}" in body
    assert f"networking-leave+{m.token}@{DOMAIN}" in body


# ---------------------------------------------------------------- rule 1: found work -> alumni


async def test_job_leave_to_leave_address_switches_to_alumni_at_once(server, sink):
    """Rule 1: "unsubscribe, I got a job at Acme!" to -leave@ makes an alumnus and congratulates."""
    add_members(server, ANN)
    await send(server, ANN, LEAVE, "unsubscribe", "unsubscribe, I got a job at Acme!")
    note = (await mails_to(sink, ANN))[0]
    assert_alumni_switch(server, note)
    assert [e.address for e in events(server, "mode-alumni")] == [ANN]
    await settled(server)
    assert len(sink.to(ANN)) == 1, "one note, no separate results mail"


async def test_leave_command_with_job_reason_to_request_switches_to_alumni(server, sink):
    """Rule 1: 'leave' plus a found-work reason to -request works the same."""
    add_members(server, ANN)
    await send(server, ANN, REQUEST, "leave", "leave - I accepted an offer at Initech, thanks all!")
    assert_alumni_switch(server, (await mails_to(sink, ANN))[0])
    assert len(events(server, "mode-alumni")) == 1


async def test_job_news_in_reply_body_counts_but_quoted_news_does_not(server, sink):
    """The classifier reads the member's own words: a 'Re:' subject is fine, quoted text is not."""
    add_members(server, ANN, BOB)
    await send(
        server,
        ANN,
        LEAVE,
        "Re: [networking] Weekly digest",
        "I landed a new position, please unsubscribe me.",
    )
    assert_alumni_switch(server, (await mails_to(sink, ANN))[0])
    await send(
        server,
        BOB,
        LEAVE,
        "Re: [networking] Good news",
        "Please remove me.\n\nOn Monday, Ann wrote:\n> I got a job at Acme!",
    )
    ask = (await mails_to(sink, BOB))[0]
    assert ask["Subject"].startswith("Please confirm: leave")
    assert member(server, BOB).delivery == "regular"


# ---------------------------------------------------------------- rule 2: on_job_leave = "ask"


async def ask_note(srv: Server, sink: Sink) -> EmailMessage:
    add_members(srv, ANN)
    await send(srv, ANN, LEAVE, "unsubscribe", "unsubscribe, I got a job at Acme!")
    return (await mails_to(sink, ANN))[0]


async def test_ask_mode_changes_nothing_and_offers_both_choices(server_factory, sink):
    """Rule 2: nothing changes yet; Reply-To confirms a leave; 'alumni' and a link are offered."""
    srv = await server_factory(list_extra=ASK)
    note = await ask_note(srv, sink)
    m = member(srv, ANN)
    assert (m.status, m.delivery) == ("active", "regular")
    confirm_token(note)
    body = text(note)
    assert '"alumni"' in body and REQUEST in body
    assert re.search(r"http://127\.0\.0\.1:8080/a/[0-9a-f]+", body)
    assert re.search(rf"networking-alumni\+[0-9a-f]+@{DOMAIN}", body)
    assert events(srv, "mode-alumni") == []


async def test_ask_mode_replying_leaves_fully(server_factory, sink):
    """Rule 2: replying to the note removes the member, with a goodbye."""
    srv = await server_factory(list_extra=ASK)
    note = await ask_note(srv, sink)
    await reply_to(srv, note)
    goodbye = (await mails_to(sink, ANN, 2))[1]
    assert goodbye["Subject"].startswith("You have left")
    assert member(srv, ANN).status == "left"


async def test_ask_mode_alumni_command_switches_to_alumni(server_factory, sink):
    """Rule 2: sending 'alumni' to -request keeps the member, in alumni mode."""
    srv = await server_factory(list_extra=ASK)
    await ask_note(srv, sink)
    await send(srv, ANN, REQUEST, "alumni")
    assert_alumni_switch(srv, (await mails_to(sink, ANN, 2))[1], found_work=False)


async def test_ask_mode_alumni_link_switches_to_alumni(server_factory, sink):
    """Rule 2: the alumni link's page (POST) switches to alumni mode; opening it (GET) does not."""
    srv = await server_factory(list_extra=ASK)
    note = await ask_note(srv, sink)
    found = re.search(r"http://127\.0\.0\.1:8080(/a/[0-9a-f]+)", text(note))
    assert found
    path = found.group(1)
    async with httpx.AsyncClient(base_url=await base_url(srv)) as web:
        assert (await web.get(path)).status_code == 200
        assert member(srv, ANN).delivery == "regular"
        assert (await web.post(path)).status_code == 200
    assert_alumni_switch(srv, (await mails_to(sink, ANN, 2))[1])


# ---------------------------------------------------------------- rule 3: any other leave


async def test_plain_leave_is_confirmed_by_reply_then_goodbye(server, sink):
    """Rule 3: a leave without a job reason asks to confirm; the reply removes the member."""
    add_members(server, ANN)
    await send(server, ANN, REQUEST, "leave")
    ask = (await mails_to(sink, ANN))[0]
    assert ask["Subject"].startswith("Please confirm: leave")
    assert member(server, ANN).status == "active"
    await reply_to(server, ask)
    goodbye = (await mails_to(sink, ANN, 2))[1]
    assert goodbye["Subject"].startswith("You have left")
    m = member(server, ANN)
    assert m.status == "left" and m.left_at is not None


async def test_leave_through_member_token_address_is_immediate(server, sink):
    """Rule 3: mail to networking-leave+TOKEN@ removes the member at once, no confirmation round."""
    add_members(server, ANN)
    token = member(server, ANN).token
    await send(server, ANN, f"networking-leave+{token}@{DOMAIN}", "unsubscribe")
    goodbye = (await mails_to(sink, ANN))[0]
    assert goodbye["Subject"].startswith("You have left")
    assert member(server, ANN).status == "left"


async def test_second_leave_through_token_address_sends_no_second_goodbye(server, sink):
    """Using the one-step address again (a double click) only says they had already left."""
    add_members(server, ANN)
    token = member(server, ANN).token
    await send(server, ANN, f"networking-leave+{token}@{DOMAIN}", "unsubscribe")
    await mails_to(sink, ANN)
    left_at = member(server, ANN).left_at
    await send(server, ANN, f"networking-leave+{token}@{DOMAIN}", "unsubscribe")
    answer = (await mails_to(sink, ANN, 2))[1]
    assert "already left" in text(answer)
    assert member(server, ANN).left_at == left_at
    assert len(events(server, "leave")) == 1


async def test_leave_through_token_address_ignores_job_news(server, sink):
    """The one-step address always removes fully, even when the text says they found work."""
    add_members(server, ANN)
    token = member(server, ANN).token
    await send(server, ANN, f"networking-leave+{token}@{DOMAIN}", "unsubscribe", "I got a job!")
    await mails_to(sink, ANN)
    assert member(server, ANN).status == "left"


async def test_negated_job_reason_is_an_ordinary_leave(server, sink):
    """Rule 3: "I still haven't found a job, please remove me" is a plain leave, not alumni."""
    add_members(server, ANN)
    await send(server, ANN, LEAVE, "unsubscribe", "I still haven't found a job, please remove me")
    ask = (await mails_to(sink, ANN))[0]
    assert ask["Subject"].startswith("Please confirm: leave")
    assert member(server, ANN).delivery == "regular"
    assert events(server, "job-leave") == []


# ---------------------------------------------------------------- rule 4: alumni who leave


async def test_alumnus_leave_is_full_leave_after_confirmation(server, sink):
    """Rule 4: an alumnus who sends leave (even with job news) is removed fully once confirmed."""
    add_members(server, ANN, delivery="alumni")
    await send(server, ANN, REQUEST, "leave", "leave\nI got a job, remember?")
    ask = (await mails_to(sink, ANN))[0]
    assert ask["Subject"].startswith("Please confirm: leave")
    await reply_to(server, ask)
    await mails_to(sink, ANN, 2)
    assert member(server, ANN).status == "left"


async def test_alumnus_leave_through_token_is_immediate(server, sink):
    """Rule 4: the leave+TOKEN address from the alumni note removes an alumnus at once."""
    add_members(server, ANN)
    await send(server, ANN, LEAVE, "unsubscribe", "I got a job at Acme!")
    note = (await mails_to(sink, ANN))[0]
    found = re.search(rf"networking-leave\+[0-9a-f]+@{re.escape(DOMAIN)}", text(note))
    assert found
    await send(server, ANN, found.group(0), "leave")
    await mails_to(sink, ANN, 2)
    assert member(server, ANN).status == "left"


# ---------------------------------------------------------------- rule 5: unsubscribe as a post


async def test_unsubscribe_posted_to_list_is_not_distributed_and_handled_privately(server, sink):
    """Rule 5: "please remove me from this list, I got a job" as a post reaches only the sender."""
    add_members(server, ANN, BOB)
    await send(server, ANN, f"networking@{DOMAIN}", "please remove me from this list, I got a job")
    note = (await mails_to(sink, ANN))[0]
    assert_alumni_switch(server, note)
    await settled(server)
    assert sink.to(BOB) == []
    with server.store.session() as s:
        assert s.exec(select(Post)).first() is None


async def test_post_that_only_talks_about_unsubscribing_is_distributed(server, sink):
    """Rule 5 is narrow: a question about unsubscribing someone else is an ordinary post."""
    add_members(server, ANN, BOB)
    await send(
        server, ANN, f"networking@{DOMAIN}", "Question", "How do I unsubscribe my colleague?"
    )
    await mails_to(sink, BOB)
    assert member(server, ANN).delivery == "regular"


# ---------------------------------------------------------------- modes


async def test_back_from_alumni_returns_to_regular(server, sink):
    """'back' from alumni mode: every post again."""
    add_members(server, ANN, delivery="alumni")
    await send(server, ANN, REQUEST, "back")
    answer = (await mails_to(sink, ANN))[0]
    assert "Welcome back" in text(answer)
    assert member(server, ANN).delivery == "regular"


async def test_back_from_digest_returns_to_regular(server, sink):
    """'looking' (an alias of back) from digest mode: every post again."""
    add_members(server, ANN, delivery="digest")
    await send(server, ANN, REQUEST, "looking")
    await mails_to(sink, ANN)
    assert member(server, ANN).delivery == "regular"


async def test_digest_regular_and_alumni_switch_modes(server, sink):
    """'digest', 'regular' and 'alumni' each switch the delivery mode."""
    add_members(server, ANN)
    for count, mode in enumerate(("digest", "regular", "alumni"), 1):
        await send(server, ANN, REQUEST, mode)
        await mails_to(sink, ANN, count)
        assert member(server, ANN).delivery == mode


async def test_alumni_command_refused_when_alumni_disabled(server_factory, sink):
    """With alumni off, 'alumni' is refused kindly and suggests the digest."""
    srv = await server_factory(list_extra="[lists.networking.alumni]\nenabled = false\n")
    add_members(srv, ANN)
    await send(srv, ANN, REQUEST, "alumni")
    answer = (await mails_to(sink, ANN))[0]
    assert "no alumni mode" in text(answer) and "digest" in text(answer)
    assert member(srv, ANN).delivery == "regular"


async def test_job_leave_with_on_job_leave_leave_is_an_ordinary_leave(server_factory, sink):
    """on_job_leave = "leave": found work or not, the member just leaves (confirmed by reply)."""
    srv = await server_factory(list_extra='[lists.networking.alumni]\non_job_leave = "leave"\n')
    add_members(srv, ANN)
    await send(srv, ANN, LEAVE, "unsubscribe", "I got a job at Acme!")
    ask = (await mails_to(sink, ANN))[0]
    assert ask["Subject"].startswith("Please confirm: leave")
    assert member(srv, ANN).delivery == "regular"
    await reply_to(srv, ask)
    await mails_to(sink, ANN, 2)
    assert member(srv, ANN).status == "left"
