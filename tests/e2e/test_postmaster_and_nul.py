"""postmaster@ is accepted and forwarded (SPEC 3, RFC 5321 4.5.1); no NUL byte reaches the relay;
an old leave+TOKEN address never removes a re-added member (issue 10)."""

from __future__ import annotations

import asyncio
import smtplib

from tests.conftest import DOMAIN, add_members, asend, make_message, member, settled

ANN = "ann@example.com"
BOB = "bob@example.net"
OWNER = "owner@example.org"
SECOND_LIST = '\n[lists.alumni]\ntitle = "Alumni"\nowners = ["chair@example.org"]\n'
NOTE = make_message(
    f"From: {BOB}\nTo: postmaster@{DOMAIN}\nSubject: your server sends odd mail\n"
    "Message-ID: <pm-1@example.net>\n\nPlease look at the attached report.\n"
)


async def test_postmaster_is_accepted_and_goes_to_the_owners_of_every_list(server_factory, sink):
    """Without [server] postmaster, mail to postmaster@ reaches each list's owners, once each."""
    srv = await server_factory(list_extra=SECOND_LIST)
    assert await asend(srv.smtp_port, BOB, f"PostMaster@{DOMAIN}", NOTE) == {}
    await settled(srv)
    for owner in (OWNER, "chair@example.org"):
        [copy] = sink.to(owner)
        assert copy.msg["Subject"] == "your server sends odd mail"
    assert {m.rcpt for m in sink.messages} == {OWNER, "chair@example.org"}


async def test_postmaster_goes_where_server_postmaster_says(server_factory, sink):
    """[server] postmaster names who gets it instead of the owners."""
    srv = await server_factory(server_extra='postmaster = ["hostmaster@example.org"]\n')
    await asend(srv.smtp_port, BOB, f"postmaster@{DOMAIN}", NOTE)
    await settled(srv)
    assert [m.rcpt for m in sink.messages] == ["hostmaster@example.org"]


async def test_bare_postmaster_is_accepted(server, sink):
    """RCPT TO:<postmaster> without a domain must be accepted too (RFC 5321 4.5.1)."""

    def rcpt() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
            client.ehlo()
            client.mail(BOB)
            return client.rcpt("postmaster")

    code, _ = await asyncio.to_thread(rcpt)
    assert code == 250


async def test_nul_bytes_never_reach_the_relay(server, sink):
    """A post with NUL bytes in its headers and body goes out without them."""
    add_members(server, ANN, BOB)
    raw = make_message(
        f"From: {ANN}\nTo: networking@{DOMAIN}\nSubject: hello\x00there\n"
        "Message-ID: <nul-1@example.com>\n\nline one\x00\nline two\n"
    )
    await asend(server.smtp_port, ANN, f"networking@{DOMAIN}", raw)
    await settled(server)
    copies = sink.to(BOB)
    assert copies and all(b"\x00" not in c.raw for c in copies)
    assert b"line two" in copies[0].raw


async def test_old_leave_address_never_removes_a_re_added_member(server, sink):
    """NAME-leave+OLDTOKEN after a leave and an admin re-add changes nothing."""
    add_members(server, ANN)
    old = member(server, ANN).token
    leave = f"networking-leave+{old}@{DOMAIN}"
    mail = make_message(f"From: {ANN}\nTo: {leave}\nSubject: leave\nMessage-ID: <l-1@x>\n\n")
    await asend(server.smtp_port, ANN, leave, mail)
    await settled(server)
    assert member(server, ANN).status == "left"
    add_members(server, ANN)
    await asend(server.smtp_port, ANN, leave, mail.replace(b"<l-1@x>", b"<l-2@x>"))
    await settled(server)
    assert member(server, ANN).status == "active"
