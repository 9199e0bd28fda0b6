"""End to end: a post through the real SMTP server reaches every member with the list headers."""

from __future__ import annotations

import asyncio
import base64
import json
import smtplib

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from listserv.cli import app
from listserv.store.tables import Inbound, Post
from tests.conftest import DOMAIN, add_members, asend, make_message, wait_for

POST = make_message("""
    From: Ann Lee <ann@example.com>
    To: networking@lists.example.org
    Subject: Anyone hiring data analysts?
    Message-ID: <post-1@example.com>
    Content-Type: text/plain; charset=utf-8

    Hi all, I'm looking for data analyst roles.
    """)


async def test_post_reaches_every_regular_member_with_list_headers(server, sink):
    """A member's post is copied to every regular member (the poster too) with SPEC 6 headers."""
    add_members(server, "ann@example.com", "bob@example.net", "cy@example.org")
    await asend(server.smtp_port, "ann@example.com", f"networking@{DOMAIN}", POST)
    await wait_for(lambda: len(sink.messages) == 3, what="three copies")
    assert sorted(m.rcpt for m in sink.messages) == [
        "ann@example.com",
        "bob@example.net",
        "cy@example.org",
    ]
    copy = sink.to("bob@example.net")[0]
    msg = copy.msg
    assert msg["List-Id"] == "Tri-County Job Seekers Networking <networking.lists.example.org>"
    assert msg["List-Post"] == "<mailto:networking@lists.example.org>"
    assert msg["List-Help"] == "<mailto:networking-request@lists.example.org?subject=help>"
    assert msg["List-Subscribe"] == "<mailto:networking-join@lists.example.org>"
    assert msg["Precedence"] == "list"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith("<http://127.0.0.1:8080/u/")
    assert "<mailto:networking-leave+" in unsub
    assert msg["Subject"] == "[networking] Anyone hiring data analysts?"
    assert msg["Reply-To"] == "networking@lists.example.org"
    assert copy.mail_from == "networking-bounces+bob=example.net@lists.example.org"
    assert (
        msg.get_content().replace("\r\n", "\n") == "Hi all, I'm looking for data analyst roles.\n"
    )
    tokens = {m.msg["List-Unsubscribe"] for m in sink.messages}
    assert len(tokens) == 3, "each member gets their own unsubscribe token"


async def test_unknown_local_part_is_refused_with_550_511(server):
    """RCPT TO an address that is none of the list's gets 550 5.1.1."""
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asend(server.smtp_port, "ann@example.com", f"nobody@{DOMAIN}", POST)
    code, text = info.value.recipients[f"nobody@{DOMAIN}"]
    assert code == 550 and b"5.1.1" in text


async def test_other_domain_is_refused_as_relay(server):
    """RCPT TO another domain gets 550 5.7.1: never an open relay."""
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asend(server.smtp_port, "ann@example.com", "someone@example.net", POST)
    code, text = info.value.recipients["someone@example.net"]
    assert code == 550 and b"5.7.1" in text


# -- helpers ---------------------------------------------------------------------------------

MEMBERS = ("ann@example.com", "bob@example.net")
OWNER = "owner@example.org"
STRANGER = "zed@example.com"
LIST = f"networking@{DOMAIN}"


def cli(srv, *args: str):  # type: ignore[no-untyped-def]
    """Run `listserv ARGS --config <the server's file>` in-process."""
    result = CliRunner().invoke(app, [*args, "--config", str(srv.cfg.path)])
    return result


def held_json(srv) -> list[dict]:  # type: ignore[no-untyped-def]
    result = cli(srv, "held", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def post_rows(srv) -> list[Post]:  # type: ignore[no-untyped-def]
    with srv.store.session() as s:
        return list(s.exec(select(Post).order_by(Post.id)))


def inbound_errors(srv) -> list[str]:  # type: ignore[no-untyped-def]
    with srv.store.session() as s:
        return [row.error for row in s.exec(select(Inbound).where(Inbound.state == "failed"))]


def simple_post(
    subject: str, msgid: str, sender: str = "ann@example.com", extra: str = ""
) -> bytes:
    return make_message(f"""
        From: {sender}
        To: {LIST}
        Subject: {subject}
        Message-ID: <{msgid}@example.com>
        {extra}
        Hello from {msgid}.
        """)


def subjects_to(sink, address: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m.msg["Subject"]) for m in sink.to(address)]


async def got(sink, address: str, fragment: str, what: str = "") -> list:  # type: ignore[no-untyped-def]
    """Wait until address has a copy whose subject contains fragment; return those copies."""

    def check() -> list:
        return [m for m in sink.to(address) if fragment in str(m.msg["Subject"] or "")]

    return await wait_for(check, what=what or f"{fragment!r} to {address}")  # type: ignore[return-value]


async def normal_post_still_delivered(srv, sink, tag: str) -> None:  # type: ignore[no-untyped-def]
    """The server keeps serving: a plain member post afterwards reaches every member."""
    await asend(
        srv.smtp_port, "ann@example.com", LIST, simple_post(f"still here {tag}", f"alive-{tag}")
    )
    for member in MEMBERS:
        await got(sink, member, f"still here {tag}")


# -- moderation ------------------------------------------------------------------------------


async def test_nonmember_post_is_held_listed_and_released_by_approve(server_factory, sink):
    """A non-member post is held, owners are told, `held` lists it and `approve ID` delivers it."""
    srv = await server_factory(list_extra='posting = "members"\nnonmember_posts = "hold"\n')
    add_members(srv, *MEMBERS)
    await asend(
        srv.smtp_port, STRANGER, LIST, simple_post("Hiring: two analysts", "held-1", STRANGER)
    )
    notice = (await got(sink, OWNER, "needs your approval"))[0]
    assert "Hiring: two analysts" in notice.msg.get_content()
    rows = held_json(srv)
    assert len(rows) == 1
    row = rows[0]
    assert row["sender"] == STRANGER and row["subject"] == "Hiring: two analysts"
    assert row["reason"] and row["received_at"]
    assert f"listserv approve {row['id']}" in notice.msg.get_content()
    assert not any(sink.to(m) for m in MEMBERS)

    result = cli(srv, "approve", str(row["id"]))
    assert result.exit_code == 0, result.output
    for member in MEMBERS:
        copy = (await got(sink, member, "Hiring: two analysts"))[0]
        assert copy.msg["Subject"] == "[networking] Hiring: two analysts"
    assert held_json(srv) == []
    assert cli(srv, "approve", str(row["id"])).exit_code == 2, (
        "a released post cannot be approved twice"
    )


async def test_reject_tells_the_sender_and_nothing_reaches_members(server_factory, sink):
    """`reject ID` marks the held post rejected and tells the sender; members get nothing."""
    srv = await server_factory()
    add_members(srv, *MEMBERS)
    await asend(srv.smtp_port, STRANGER, LIST, simple_post("Buy my course", "held-2", STRANGER))
    await got(sink, OWNER, "needs your approval")
    [row] = held_json(srv)
    result = cli(srv, "reject", str(row["id"]))
    assert result.exit_code == 0, result.output
    await got(sink, STRANGER, "was not posted")
    assert held_json(srv) == []
    assert [p.status for p in post_rows(srv)] == ["rejected"]
    await normal_post_still_delivered(srv, sink, "after-reject")
    assert not any("Buy my course" in s for m in MEMBERS for s in subjects_to(sink, m))


async def test_nonmember_posts_reject_answers_the_sender(server_factory, sink):
    """With nonmember_posts = "reject" the sender is told why and no one else gets the post."""
    srv = await server_factory(list_extra='nonmember_posts = "reject"\n')
    add_members(srv, *MEMBERS)
    await asend(srv.smtp_port, STRANGER, LIST, simple_post("Spam offer", "rej-1", STRANGER))
    answer = (await got(sink, STRANGER, "was not posted"))[0]
    assert "join" in answer.msg.get_content()
    assert held_json(srv) == []
    await normal_post_still_delivered(srv, sink, "after-nonmember-reject")
    assert not any("Spam offer" in s for m in (*MEMBERS, OWNER) for s in subjects_to(sink, m))


async def test_nonmember_posts_discard_drops_silently(server_factory, sink):
    """With nonmember_posts = "discard" nobody hears of the post: not the sender, owners or members."""
    srv = await server_factory(list_extra='nonmember_posts = "discard"\n')
    add_members(srv, *MEMBERS)
    await asend(srv.smtp_port, STRANGER, LIST, simple_post("Silent spam", "disc-1", STRANGER))
    await normal_post_still_delivered(srv, sink, "after-discard")
    await asyncio.sleep(0.3)
    assert sink.to(STRANGER) == [] and sink.to(OWNER) == []
    assert post_rows(srv)[0].status == "discarded"
    assert held_json(srv) == []


# -- bad input -------------------------------------------------------------------------------


async def test_oversize_message_gets_552_and_the_server_keeps_serving(server_factory, sink):
    """A message over max_message_bytes is refused with 552 (SIZE at MAIL, or at DATA); nothing stored."""
    srv = await server_factory(server_extra="max_message_bytes = 4000\n")
    add_members(srv, *MEMBERS)
    big = simple_post("Huge", "big-1") + (b"y" * 76 + b"\r\n") * 80
    with pytest.raises(smtplib.SMTPSenderRefused) as info:  # smtplib announces SIZE=...
        await asend(srv.smtp_port, "ann@example.com", LIST, big)
    assert info.value.smtp_code == 552

    def without_size() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", srv.smtp_port, timeout=30) as client:
            client.ehlo()
            assert client.mail("ann@example.com")[0] == 250
            assert client.rcpt(LIST)[0] == 250
            return client.data(big)

    code, _text = await asyncio.to_thread(without_size)
    assert code == 552
    await normal_post_still_delivered(srv, sink, "after-oversize")
    assert not any("Huge" in s for s in subjects_to(sink, "bob@example.net"))


BROKEN_BOUNDARY = make_message("""
    From: ann@example.com
    To: networking@lists.example.org
    Subject: Broken multipart
    Message-ID: <broken-1@example.com>
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="never-used"

    --wrong-boundary
    Content-Type: text/plain

    This part's boundary does not match and there is no closing line.
    """)

NO_HEADERS = b"\r\nJust a body, not one header line.\r\n"

EIGHT_BIT_HEADERS = (
    b"From: Ren\xe9 <ann@example.com>\r\nTo: networking@lists.example.org\r\n"
    b"Subject: Caf\xe9 \xff\xfe meetup\r\nMessage-ID: <8bit-1@example.com>\r\n\r\n"
    b"Body with 8-bit bytes and no charset: \xe9\xe8\xff\r\n"
)


@pytest.mark.parametrize(
    "raw",
    [BROKEN_BOUNDARY, NO_HEADERS, EIGHT_BIT_HEADERS],
    ids=["broken-boundary", "no-headers", "8bit-headers"],
)
async def test_malformed_messages_are_accepted_cleanly_and_the_server_keeps_serving(
    server, sink, raw
):
    """Malformed MIME, a header-less message and raw 8-bit header bytes get 250 and break nothing."""
    add_members(server, *MEMBERS)
    refused = await asend(server.smtp_port, "ann@example.com", LIST, raw)
    assert refused == {}
    await normal_post_still_delivered(server, sink, "after-malformed")
    assert inbound_errors(server) == []


async def test_eight_bit_header_post_is_delivered_with_body_intact(server, sink):
    """A post with undecodable 8-bit headers still reaches members, its body bytes unchanged."""
    add_members(server, *MEMBERS)
    await asend(server.smtp_port, "ann@example.com", LIST, EIGHT_BIT_HEADERS)
    copy = await wait_for(lambda: sink.to("bob@example.net"), what="the 8-bit post")
    raw = copy[0].raw  # type: ignore[index]
    assert raw.split(b"\r\n\r\n", 1)[1] == EIGHT_BIT_HEADERS.split(b"\r\n\r\n", 1)[1]
    assert "[networking]" in str(copy[0].msg["Subject"])  # type: ignore[index]


async def test_message_without_from_uses_the_envelope_sender(server, sink):
    """A member's post with no From header is judged (and recorded) by its envelope sender."""
    add_members(server, *MEMBERS)
    raw = make_message("""
        To: networking@lists.example.org
        Subject: No From here
        Message-ID: <nofrom-1@example.com>

        I forgot my From line.
        """)
    await asend(server.smtp_port, "Ann@Example.com", LIST, raw)
    for member in MEMBERS:
        await got(sink, member, "No From here")
    [post] = post_rows(server)
    assert post.sender == "ann@example.com" and post.status == "accepted"


async def test_post_carrying_our_list_id_is_not_redistributed(server, sink):
    """A post that already carries this list's List-Id (a loop) is held, not sent again."""
    add_members(server, *MEMBERS)
    looped = simple_post(
        "Looping post",
        "loop-1",
        extra="List-Id: Tri-County Job Seekers Networking <networking.lists.example.org>\n",
    )
    await asend(server.smtp_port, "ann@example.com", LIST, looped)
    await normal_post_still_delivered(server, sink, "after-loop")
    assert not any("Looping post" in s for m in MEMBERS for s in subjects_to(sink, m))
    assert post_rows(server)[0].status == "held"


async def test_duplicate_message_id_from_the_same_sender_is_sent_once(server, sink):
    """The same Message-ID from the same sender twice within a day is distributed once."""
    add_members(server, *MEMBERS)
    post = simple_post("Only once please", "dup-1")
    await asend(server.smtp_port, "ann@example.com", LIST, post)
    await got(sink, "bob@example.net", "Only once please")
    await asend(server.smtp_port, "ann@example.com", LIST, post)
    await normal_post_still_delivered(server, sink, "after-duplicate")
    for member in MEMBERS:
        assert sum("Only once please" in s for s in subjects_to(sink, member)) == 1


async def test_subject_prefix_is_not_stacked_on_a_reply(server, sink):
    """'Re: [networking] Re: [networking] x' goes out as '[networking] Re: x'."""
    add_members(server, *MEMBERS)
    await asend(
        server.smtp_port,
        "ann@example.com",
        LIST,
        simple_post("Re: [networking] Re: [networking] x", "re-1"),
    )
    copy = (await wait_for(lambda: sink.to("bob@example.net"), what="the reply"))[0]  # type: ignore[index]
    assert copy.msg["Subject"] == "[networking] Re: x"


ATTACHMENT = bytes(range(256)) * 8
LATIN1 = "Grüße aus Köln, café crème: déjà vu.\r\n.A line starting with a dot.\r\n".encode(
    "latin-1"
)


def multipart_post() -> bytes:
    head = make_message("""
        From: Ann Lee <ann@example.com>
        To: networking@lists.example.org
        Subject: CV attached
        Message-ID: <mp-1@example.com>
        MIME-Version: 1.0
        Content-Type: multipart/mixed; boundary="b1"

        """)
    b64 = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    body = (
        b"This is a multi-part message in MIME format.\r\n"
        b"--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + LATIN1
        + b'--b1\r\nContent-Type: application/octet-stream; name="cv.bin"\r\n'
        b'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="cv.bin"\r\n\r\n'
        + b64
        + b"--b1--\r\n"
    )
    return head + body


async def test_body_and_attachments_are_preserved_byte_for_byte(server, sink):
    """Everything after the header block of a multipart post reaches members unchanged."""
    add_members(server, *MEMBERS)
    raw = multipart_post()
    await asend(server.smtp_port, "ann@example.com", LIST, raw)
    copy = (await got(sink, "bob@example.net", "CV attached"))[0]
    assert copy.raw.split(b"\r\n\r\n", 1)[1] == raw.split(b"\r\n\r\n", 1)[1]
    parts = list(copy.msg.iter_attachments())
    assert parts[0].get_content() == ATTACHMENT
    text = next(p for p in copy.msg.walk() if p.get_content_type() == "text/plain")
    assert "Grüße aus Köln" in text.get_content()


async def test_reply_to_sender_leaves_reply_to_alone(server_factory, sink):
    """With reply_to = "sender" the poster's Reply-To (or its absence) is passed on unchanged."""
    srv = await server_factory(list_extra='reply_to = "sender"\n')
    add_members(srv, *MEMBERS)
    await asend(
        srv.smtp_port,
        "ann@example.com",
        LIST,
        simple_post("With reply-to", "rt-1", extra="Reply-To: Ann Home <ann.home@example.com>\n"),
    )
    await asend(srv.smtp_port, "ann@example.com", LIST, simple_post("Without reply-to", "rt-2"))
    with_rt = (await got(sink, "bob@example.net", "With reply-to"))[0]
    without = (await got(sink, "bob@example.net", "Without reply-to"))[0]
    assert with_rt.msg["Reply-To"] == "Ann Home <ann.home@example.com>"
    assert without.msg["Reply-To"] is None


async def test_mail_to_the_owner_address_reaches_the_owners(server, sink):
    """networking-owner@ forwards the message, subject and body unchanged, to the owners."""
    add_members(server, *MEMBERS)
    raw = make_message("""
        From: zed@example.com
        To: networking-owner@lists.example.org
        Subject: Question for the organisers
        Message-ID: <owner-1@example.com>

        Can I post job ads?
        """)
    await asend(server.smtp_port, STRANGER, f"networking-owner@{DOMAIN}", raw)
    copy = (await got(sink, OWNER, "Question for the organisers"))[0]
    assert copy.msg["Subject"] == "Question for the organisers"
    assert "Can I post job ads?" in copy.msg.get_content()
    await asyncio.sleep(0.3)
    assert not any(sink.to(m) for m in MEMBERS)


# -- protocol limits -------------------------------------------------------------------------


async def test_lmtp_mode_accepts_and_delivers(server_factory, sink):
    """With protocol = "lmtp" the server speaks LMTP (LHLO, one answer per recipient) and delivers."""
    srv = await server_factory(server_extra='protocol = "lmtp"\n')
    add_members(srv, *MEMBERS)

    def deliver() -> dict:
        client = smtplib.LMTP("127.0.0.1", srv.smtp_port)
        try:
            return client.sendmail("ann@example.com", [LIST], simple_post("Over LMTP", "lmtp-1"))
        finally:
            client.quit()

    assert await asyncio.to_thread(deliver) == {}
    for member in MEMBERS:
        await got(sink, member, "Over LMTP")

    def refused() -> tuple[int, bytes]:
        client = smtplib.LMTP("127.0.0.1", srv.smtp_port)
        try:
            client.ehlo_or_helo_if_needed()
            client.mail("ann@example.com")
            return client.rcpt(f"nobody@{DOMAIN}")
        finally:
            client.quit()

    code, text = await asyncio.to_thread(refused)
    assert code == 550 and b"5.1.1" in text


async def test_thousands_of_recipients_get_452_after_the_limit(server, sink):
    """RCPT beyond the per-transaction limit gets 452 4.5.3; the accepted ones still work."""
    add_members(server, *MEMBERS)

    def many() -> tuple[list[int], tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as client:
            client.ehlo()
            client.mail("ann@example.com")
            codes = [client.rcpt(LIST)[0] for _ in range(3000)]
            return codes, client.data(simple_post("Many recipients", "many-1"))

    codes, (data_code, _text) = await asyncio.to_thread(many)
    assert set(codes[:100]) == {250}
    assert set(codes[100:]) == {452}
    assert data_code == 250
    await normal_post_still_delivered(server, sink, "after-many")
    for member in MEMBERS:
        assert sum("Many recipients" in s for s in subjects_to(sink, member)) == 1
    assert [p.subject for p in post_rows(server)].count("Many recipients") == 1, (
        "one post, not one per RCPT"
    )
