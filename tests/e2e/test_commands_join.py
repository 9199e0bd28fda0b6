"""Joining through the running server: double opt-in by reply, by command and by web page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
from sqlmodel import select

from listserv.server import Server
from listserv.store.tables import Token
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
ANN = "ann@example.com"
OWNER = "owner@example.org"


def text(msg: EmailMessage) -> str:
    return msg.get_content()


async def join_and_get_confirmation(
    srv: Server, sink: Sink, subject: str = "join", body: str = "", to: str = REQUEST
) -> EmailMessage:
    await send(srv, ANN, to, subject, body)
    return (await mails_to(sink, ANN))[0]


async def test_join_in_subject_makes_pending_member_and_sends_one_confirmation(server, sink):
    """'join' in the Subject: a pending member and one confirmation, Reply-To -confirm+TOKEN."""
    msg = await join_and_get_confirmation(server, sink)
    await settled(server)
    assert len(sink.to(ANN)) == 1
    assert member(server, ANN).status == "pending"
    assert msg["Subject"].startswith("Please confirm")
    token = confirm_token(msg)
    assert f"/c/{token}" in text(msg)
    assert msg["Auto-Submitted"] == "auto-replied"


async def test_join_in_body_to_request_address_asks_for_confirmation(server, sink):
    """'join' on a body line to -request works like a Subject 'join'."""
    msg = await join_and_get_confirmation(server, sink, subject="Hello there", body="join")
    confirm_token(msg)
    assert member(server, ANN).status == "pending"


async def test_mail_to_join_address_asks_for_confirmation(server, sink):
    """Any mail to networking-join@ is a 'join'."""
    msg = await join_and_get_confirmation(
        server, sink, subject="please add me", to=f"networking-join@{DOMAIN}"
    )
    confirm_token(msg)
    assert member(server, ANN).status == "pending"


async def test_replying_to_confirm_address_activates_and_welcomes(server, sink):
    """A reply to networking-confirm+TOKEN@ makes the member active and sends a welcome."""
    token = confirm_token(await join_and_get_confirmation(server, sink))
    await send(
        server,
        ANN,
        f"networking-confirm+{token}@{DOMAIN}",
        "Re: Please confirm: join Tri-County Job Seekers Networking",
        "> To confirm, just reply",
    )
    welcome = (await mails_to(sink, ANN, 2))[1]
    assert member(server, ANN).status == "active"
    assert welcome["Subject"] == "Welcome to Tri-County Job Seekers Networking"
    body = text(welcome)
    assert "every post as it is sent" in body
    assert f"http://127.0.0.1:8080/u/{member(server, ANN).token}" in body


async def test_confirm_command_to_request_address_activates(server, sink):
    """'confirm TOKEN' sent to -request confirms the join."""
    token = confirm_token(await join_and_get_confirmation(server, sink))
    await send(server, ANN, REQUEST, f"confirm {token}")
    welcome = (await mails_to(sink, ANN, 2))[1]
    assert member(server, ANN).status == "active"
    assert welcome["Subject"].startswith("Welcome")


async def test_post_to_confirm_page_activates_but_get_changes_nothing(server, sink):
    """GET /c/TOKEN only shows the page; POST /c/TOKEN confirms and welcomes."""
    token = confirm_token(await join_and_get_confirmation(server, sink))
    async with httpx.AsyncClient(base_url=await base_url(server)) as web:
        shown = await web.get(f"/c/{token}")
        assert shown.status_code == 200 and "<form" in shown.text
        assert member(server, ANN).status == "pending"
        done = await web.post(f"/c/{token}")
    assert done.status_code == 200
    assert member(server, ANN).status == "active"
    welcome = (await mails_to(sink, ANN, 2))[1]
    assert welcome["Subject"].startswith("Welcome")


async def test_used_token_is_refused(server, sink):
    """A confirmation code works once; a second use is answered with a polite refusal."""
    token = confirm_token(await join_and_get_confirmation(server, sink))
    await send(server, ANN, REQUEST, f"confirm {token}")
    await mails_to(sink, ANN, 2)
    await send(server, ANN, REQUEST, f"confirm {token}")
    refusal = (await mails_to(sink, ANN, 3))[2]
    assert "already used or expired" in text(refusal)
    await settled(server)
    assert len(sink.to(ANN)) == 3, "no second welcome"


async def test_expired_token_is_refused(server, sink):
    """A confirmation code past its expiry does nothing but say so."""
    token = confirm_token(await join_and_get_confirmation(server, sink))
    with server.store.session() as s:
        s.get(Token, token).expires_at = datetime.now(UTC) - timedelta(minutes=1)
    await send(server, ANN, f"networking-confirm+{token}@{DOMAIN}", "Re: Please confirm")
    refusal = (await mails_to(sink, ANN, 2))[1]
    assert "expired" in text(refusal)
    assert member(server, ANN).status == "pending"


async def test_approve_list_asks_owners_and_owner_reply_activates(server_factory, sink):
    """subscription = "approve": after the joiner confirms, owners are asked; a reply admits."""
    srv = await server_factory(list_extra='subscription = "approve"\n')
    token = confirm_token(await join_and_get_confirmation(srv, sink))
    await send(srv, ANN, f"networking-confirm+{token}@{DOMAIN}", "Re: Please confirm")
    asked = (await mails_to(sink, OWNER))[0]
    assert ANN in asked["Subject"]
    assert "list owners" in text((await mails_to(sink, ANN, 2))[1])
    assert member(srv, ANN).status == "pending"
    approve = confirm_token(asked)
    await send(srv, OWNER, f"networking-confirm+{approve}@{DOMAIN}", f"Re: {asked['Subject']}")
    welcome = (await mails_to(sink, ANN, 3))[2]
    assert welcome["Subject"].startswith("Welcome")
    assert member(srv, ANN).status == "active"
    ack = (await mails_to(sink, OWNER, 2))[1]
    assert f"{ANN} is now a member" in text(ack)


async def test_closed_list_refuses_join_politely(server_factory, sink):
    """subscription = "closed": no pending member, a kind refusal that points to the owners."""
    srv = await server_factory(list_extra='subscription = "closed"\n')
    answer = await join_and_get_confirmation(srv, sink)
    assert answer["Reply-To"] is None
    assert "Sorry" in text(answer) and "owners" in text(answer)
    assert member(srv, ANN) is None


async def test_join_digest_confirms_into_digest_delivery(server, sink):
    """'join digest' makes a digest member once confirmed."""
    token = confirm_token(await join_and_get_confirmation(server, sink, subject="join digest"))
    assert "digest" in text((sink.to(ANN)[0]).msg)
    await send(server, ANN, REQUEST, f"confirm {token}")
    welcome = (await mails_to(sink, ANN, 2))[1]
    assert member(server, ANN).delivery == "digest" and member(server, ANN).status == "active"
    assert "a digest of the posts" in text(welcome)


async def test_join_flood_sends_at_most_one_confirmation_a_day(server, sink):
    """Many joins for one address in a day: one confirmation mail, one live token."""
    for _ in range(5):
        await send(server, ANN, REQUEST, "join")
    await settled(server)
    confirmations = [m for m in sink.to(ANN) if m.msg["Subject"].startswith("Please confirm")]
    assert len(confirmations) == 1
    with server.store.session() as s:
        assert len(s.exec(select(Token).where(Token.address == ANN)).all()) == 1


async def test_join_from_active_member_says_already_a_member(server, sink):
    """A member who sends 'join' is told they are already on the list; nothing else happens."""
    add_members(server, ANN)
    answer = await join_and_get_confirmation(server, sink)
    assert "already a member" in text(answer)
    assert answer["Reply-To"] is None
    assert member(server, ANN).status == "active"
