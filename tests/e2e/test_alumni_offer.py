"""Issue 9: unsure leaves are asked, every leave offers alumni mode in one step, 'stop' leaves."""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx

from listserv.server import Server
from tests.conftest import (
    DOMAIN,
    add_members,
    asend,
    base_url,
    confirm_token,
    mails_to,
    make_message,
    member,
    settled,
)
from tests.conftest import send_to_list as send

REQUEST = f"networking-request@{DOMAIN}"
LEAVE = f"networking-leave@{DOMAIN}"
ANN = "ann@example.com"


def text(msg: EmailMessage) -> str:
    return msg.get_content()


def alumni_url(msg: EmailMessage) -> str:
    found = re.search(r"http://127\.0\.0\.1:8080(/a/[0-9a-f]{40})", text(msg))
    assert found, text(msg)
    return found.group(1)


def alumni_address(msg: EmailMessage) -> str:
    found = re.search(rf"networking-alumni\+[0-9a-f]{{40}}@{re.escape(DOMAIN)}", text(msg))
    assert found, text(msg)
    return found.group(0)


async def plain_leave_confirmation(srv: Server, sink) -> EmailMessage:  # type: ignore[no-untyped-def]
    add_members(srv, ANN)
    await send(srv, ANN, LEAVE, "unsubscribe", "Too much mail for me these days.")
    [note] = await mails_to(sink, ANN)
    assert note["Subject"].startswith("Please confirm: leave")
    return note


async def test_unsure_leave_is_asked_and_never_switched(server, sink):
    """'Done with the hunt' is unsure: nothing changes; the reply offers alumni and the leave."""
    add_members(server, ANN)
    await send(server, ANN, LEAVE, "unsubscribe", "I'm no longer looking, thanks everyone.")
    [note] = await mails_to(sink, ANN)
    m = member(server, ANN)
    assert (m.status, m.delivery) == ("active", "regular")
    assert "congratulations" in text(note).lower()
    confirm_token(note)  # replying completes the leave in one step
    assert alumni_url(note) == f"/a/{m.token}"
    assert alumni_address(note) == f"networking-alumni+{m.token}@{DOMAIN}"


async def test_plain_leave_confirmation_offers_the_alumni_link_which_switches_on_post(server, sink):
    """The alumni link in an ordinary leave's confirmation: GET changes nothing, POST switches."""
    note = await plain_leave_confirmation(server, sink)
    async with httpx.AsyncClient(base_url=await base_url(server)) as web:
        page = await web.get(alumni_url(note))
        assert page.status_code == 200 and "button" in page.text
        assert member(server, ANN).delivery == "regular"
        done = await web.post(alumni_url(note))
        assert done.status_code == 200 and "alumni mode" in done.text
    m = member(server, ANN)
    assert (m.status, m.delivery) == ("active", "alumni")
    welcome = (await mails_to(sink, ANN, 2))[1]
    assert "alumni" in welcome["Subject"].lower()
    assert f"networking-leave+{m.token}@{DOMAIN}" in text(welcome)  # leaving stays one step


async def test_plain_leave_confirmation_offers_the_alumni_address_which_switches_at_once(
    server, sink
):
    """Any mail to NAME-alumni+TOKEN@ switches the member to alumni mode in one step."""
    note = await plain_leave_confirmation(server, sink)
    await send(server, ANN, alumni_address(note), "stay", "")
    welcome = (await mails_to(sink, ANN, 2))[1]
    assert (member(server, ANN).status, member(server, ANN).delivery) == ("active", "alumni")
    assert "alumni" in welcome["Subject"].lower()


async def test_goodbye_offers_alumni_and_the_link_brings_a_leaver_back_as_an_alumnus(server, sink):
    """After a full leave, the goodbye's alumni link re-activates the member in alumni mode."""
    add_members(server, ANN)
    token = member(server, ANN).token
    await send(server, ANN, f"networking-leave+{token}@{DOMAIN}", "bye", "")
    [goodbye] = await mails_to(sink, ANN)
    assert goodbye["Subject"].startswith("You have left") and member(server, ANN).status == "left"
    async with httpx.AsyncClient(base_url=await base_url(server)) as web:
        assert (await web.post(alumni_url(goodbye))).status_code == 200
    m = member(server, ANN)
    assert (m.status, m.delivery) == ("active", "alumni")


async def test_an_alumnus_leaving_gets_no_alumni_offer(server, sink):
    """Rule 4: an alumnus who leaves is removed fully; the goodbye offers nothing more."""
    add_members(server, ANN, delivery="alumni")
    token = member(server, ANN).token
    await send(server, ANN, f"networking-leave+{token}@{DOMAIN}", "bye", "")
    [goodbye] = await mails_to(sink, ANN)
    assert "/a/" not in text(goodbye) and "networking-alumni+" not in text(goodbye)


async def test_automated_mail_to_the_alumni_address_changes_nothing(server, sink):
    """An auto-responder answering to NAME-alumni+TOKEN@ does not switch anyone."""
    add_members(server, ANN)
    token = member(server, ANN).token
    raw = make_message(f"""\
        From: {ANN}
        To: networking-alumni+{token}@{DOMAIN}
        Subject: Out of office
        Auto-Submitted: auto-replied

        I am away until Monday.
        """)
    await asend(server.smtp_port, ANN, f"networking-alumni+{token}@{DOMAIN}", raw)
    await settled(server)
    assert member(server, ANN).delivery == "regular"


async def test_html_leave_whose_job_news_is_only_in_a_blockquote_is_not_switched(server, sink):
    """An HTML-only leave quoting someone's 'I got a job' in <blockquote> is an ordinary leave."""
    add_members(server, ANN)
    html = (
        "<div>Please take me off the list.</div>"
        "<div class='gmail_quote'>On Mon, Bob wrote:<blockquote>I got a job at Acme!"
        "</blockquote></div>"
    )
    raw = make_message(f"""\
        From: {ANN}
        To: {LEAVE}
        Subject: unsubscribe
        MIME-Version: 1.0
        Content-Type: text/html; charset=utf-8

        {html}
        """)
    await asend(server.smtp_port, ANN, LEAVE, raw)
    [note] = await mails_to(sink, ANN)
    assert note["Subject"].startswith("Please confirm: leave")
    assert member(server, ANN).delivery == "regular"


async def test_stop_alone_to_the_request_address_is_a_leave(server, sink):
    """A command mail whose only word is 'stop' (any case) asks to confirm a leave."""
    add_members(server, ANN)
    await send(server, ANN, REQUEST, "STOP", "")
    [note] = await mails_to(sink, ANN)
    assert note["Subject"].startswith("Please confirm: leave")
    await send(server, ANN, str(note["Reply-To"]), f"Re: {note['Subject']}", "yes")
    await mails_to(sink, ANN, 2)
    assert member(server, ANN).status == "left"


async def test_remove_and_unsubscribe_me_alone_are_leaves_but_end_still_ends(server, sink):
    """'remove' and 'unsubscribe me' leave; 'end' only stops command reading."""
    add_members(server, ANN, "bob@example.net")
    await send(server, ANN, REQUEST, "", "Remove")
    await send(server, "bob@example.net", REQUEST, "", "unsubscribe me")
    for who in (ANN, "bob@example.net"):
        [note] = await mails_to(sink, who)
        assert note["Subject"].startswith("Please confirm: leave")
    sink.clear()
    await send(server, ANN, REQUEST, "", "end")
    await settled(server)
    assert member(server, ANN).status == "active"
