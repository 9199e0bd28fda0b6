"""Only the member changes a membership (SPEC 5, issue 10): forged From: changes nothing and
the member gets one confirmation; a DKIM-signed or MTA-authenticated mail changes at once."""

from __future__ import annotations

import os
from pathlib import Path

import dkim
import dkim.dknewkey
import httpx
import pytest

from listserv.server import Server
from tests.conftest import (
    DOMAIN,
    Sink,
    add_members,
    asend,
    base_url,
    confirm_token,
    mails_to,
    make_message,
    member,
    settled,
)

REQUEST = f"networking-request@{DOMAIN}"
LEAVE = f"networking-leave@{DOMAIN}"
LIST = f"networking@{DOMAIN}"
ANN = "ann@example.com"
STRANGER = "mallory@evil.test"
AR_ID = "mx.lists.example.org"


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A locally made RSA key: (private PEM, the TXT record of s1._domainkey.example.com)."""
    if not os.path.exists(dkim.dknewkey.OPENSSL_BINARY):
        pytest.skip("dknewkey needs openssl")
    path: Path = tmp_path_factory.mktemp("dkim")
    dkim.dknewkey.GenRSAKeys(str(path / "rsa.key"), verbose=False)
    dkim.dknewkey.ExtractRSADnsPublicKey(str(path / "rsa.key"), str(path / "rsa.dns"), False)
    return (path / "rsa.key").read_bytes(), (path / "rsa.dns").read_bytes()


def stub_txt(record: bytes):  # type: ignore[no-untyped-def]
    """A TXT lookup that knows example.com's key and nothing else."""
    return lambda name: [record] if name == "s1._domainkey.example.com" else None


def mail(to: str, subject: str, body: str = "", extra: str = "", sender: str = ANN) -> bytes:
    return make_message(
        f"{extra}From: Ann Example <{sender}>\nTo: {to}\nSubject: {subject}\n"
        f"Message-ID: <{abs(hash((to, subject, body, extra)))}@example.com>\n\n{body}\n"
    )


def signed(raw: bytes, key: bytes) -> bytes:
    return dkim.sign(raw, b"s1", b"example.com", key) + raw


async def dkim_server(server_factory, rsa_key) -> Server:  # type: ignore[no-untyped-def]
    srv = await server_factory(sender_auth="dkim", dkim_txt=stub_txt(rsa_key[1]))
    add_members(srv, ANN)
    return srv


async def assert_one_confirmation(srv: Server, sink: Sink, words: str) -> str:
    """Nothing went to the stranger; the member got exactly one mail, a confirmation saying
    what will change; returns its token."""
    await settled(srv)
    assert sink.to(STRANGER) == []
    mails = await mails_to(sink, ANN)
    assert len(mails) == 1, [m["Subject"] for m in mails]
    body = mails[0].get_content()
    assert "nothing has changed yet" in body and words in body
    token = confirm_token(mails[0])
    assert f"/c/{token}" in body
    return token


@pytest.mark.parametrize(
    ("to", "subject", "body", "words"),
    [
        (REQUEST, "digest", "", "a digest of the posts"),
        (REQUEST, "alumni", "", "the low-volume alumni update"),
        (LEAVE, "leave", "I got a job at Acme, thanks all!", "the low-volume alumni update"),
        (LIST, "unsubscribe", "Please remove me from this list, I got a job", "alumni update"),
    ],
)
async def test_forged_change_changes_nothing_and_asks_the_member_once(
    server_factory, sink, rsa_key, to, subject, body, words
):
    """A member's From: with a stranger's envelope and no signature: one confirmation, no change."""
    srv = await dkim_server(server_factory, rsa_key)
    await asend(srv.smtp_port, STRANGER, to, mail(to, subject, body))
    await assert_one_confirmation(srv, sink, words)
    m = member(srv, ANN)
    assert (m.status, m.delivery) == ("active", "regular")


@pytest.mark.parametrize(
    ("start", "command", "words"),
    [("digest", "regular", "every post as it is sent"), ("alumni", "back", "every post")],
)
async def test_forged_switch_back_to_every_post_changes_nothing(
    server_factory, sink, rsa_key, start, command, words
):
    """regular and back in a member's name leave their delivery as it is, and ask them."""
    srv = await server_factory(sender_auth="dkim", dkim_txt=stub_txt(rsa_key[1]))
    add_members(srv, ANN, delivery=start)
    await asend(srv.smtp_port, STRANGER, REQUEST, mail(REQUEST, command))
    await assert_one_confirmation(srv, sink, words)
    assert member(srv, ANN).delivery == start


async def test_repeated_forgery_sends_the_member_one_confirmation(server_factory, sink, rsa_key):
    """The same forged change five times in a day: still one mail to the member."""
    srv = await dkim_server(server_factory, rsa_key)
    for n in range(5):
        await asend(srv.smtp_port, STRANGER, REQUEST, mail(REQUEST, "digest", f"digest {n}"))
    await assert_one_confirmation(srv, sink, "a digest of the posts")
    assert member(srv, ANN).delivery == "regular"


async def test_forged_change_confirmed_by_the_member_takes_effect(server_factory, sink, rsa_key):
    """The member's reply to the confirmation makes the change, once."""
    srv = await dkim_server(server_factory, rsa_key)
    await asend(srv.smtp_port, STRANGER, REQUEST, mail(REQUEST, "digest"))
    token = await assert_one_confirmation(srv, sink, "a digest of the posts")
    confirm = f"networking-confirm+{token}@{DOMAIN}"
    await asend(srv.smtp_port, ANN, confirm, mail(confirm, "Re: Please confirm", "yes"))
    await settled(srv)
    assert member(srv, ANN).delivery == "digest"


async def test_forged_change_confirmed_on_the_web_takes_effect(server_factory, sink, rsa_key):
    """POST /c/TOKEN of a change token makes the change; GET changes nothing."""
    srv = await dkim_server(server_factory, rsa_key)
    await asend(srv.smtp_port, STRANGER, REQUEST, mail(REQUEST, "alumni"))
    token = await assert_one_confirmation(srv, sink, "alumni update")
    url = await base_url(srv)
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/c/{token}")).status_code == 200
        assert member(srv, ANN).delivery == "regular"
        assert (await client.post(f"{url}/c/{token}")).status_code == 200
    assert member(srv, ANN).delivery == "alumni"


async def test_forged_leave_does_not_cancel_a_pending_join(server_factory, sink, rsa_key):
    """A leave in a joiner's name leaves the join pending; the joiner is asked."""
    srv = await server_factory(sender_auth="dkim", dkim_txt=stub_txt(rsa_key[1]))
    await asend(srv.smtp_port, ANN, REQUEST, mail(REQUEST, "join"))
    await settled(srv)
    sink.clear()
    await asend(srv.smtp_port, STRANGER, LEAVE, mail(LEAVE, "leave"))
    await assert_one_confirmation(srv, sink, "request to join will be cancelled")
    assert member(srv, ANN).status == "pending"


async def test_dkim_signed_change_takes_effect_at_once(server_factory, sink, rsa_key):
    """A signature by the From domain, whatever the envelope, is the member's own mail."""
    srv = await dkim_server(server_factory, rsa_key)
    raw = signed(mail(REQUEST, "digest"), rsa_key[0])
    await asend(srv.smtp_port, "bounces@esp.example.net", REQUEST, raw)
    await settled(srv)
    assert member(srv, ANN).delivery == "digest"
    assert all("Please confirm" not in m["Subject"] for m in await mails_to(sink, ANN))


async def test_dkim_signed_job_leave_switches_to_alumni_at_once(server_factory, sink, rsa_key):
    """Rule 1 stays one step for a member whose provider signs their mail."""
    srv = await dkim_server(server_factory, rsa_key)
    raw = signed(mail(LEAVE, "leave", "I got a job at Acme!"), rsa_key[0])
    await asend(srv.smtp_port, ANN, LEAVE, raw)
    await settled(srv)
    assert member(srv, ANN).delivery == "alumni"


async def test_signature_of_a_changed_mail_does_not_count(server_factory, sink, rsa_key):
    """A signed 'help' replayed with 'alumni' in the body is not the member's request."""
    srv = await dkim_server(server_factory, rsa_key)
    raw = signed(mail(REQUEST, "Re: hi", "help"), rsa_key[0]).replace(
        b"\r\nhelp\r\n", b"\r\nalumni\r\n"
    )
    await asend(srv.smtp_port, STRANGER, REQUEST, raw)
    await assert_one_confirmation(srv, sink, "alumni update")
    assert member(srv, ANN).delivery == "regular"


async def test_mta_authentication_results_take_effect_at_once(server_factory, sink):
    """sender_auth = mta:ID trusts dkim=pass from that authserv-id, aligned with From."""
    srv = await server_factory(sender_auth=f"mta:{AR_ID}")
    add_members(srv, ANN)
    ar = f"Authentication-Results: {AR_ID}; dkim=pass header.d=example.com header.s=s1\n"
    await asend(srv.smtp_port, ANN, REQUEST, mail(REQUEST, "digest", extra=ar))
    await settled(srv)
    assert member(srv, ANN).delivery == "digest"


async def test_mta_mode_ignores_another_servers_results(server_factory, sink):
    """An Authentication-Results header of another authserv-id (a forger's own) counts for nothing."""
    srv = await server_factory(sender_auth=f"mta:{AR_ID}")
    add_members(srv, ANN)
    ar = "Authentication-Results: evil.test; dkim=pass header.d=example.com\n"
    await asend(srv.smtp_port, STRANGER, REQUEST, mail(REQUEST, "digest", extra=ar))
    await assert_one_confirmation(srv, sink, "a digest of the posts")
    assert member(srv, ANN).delivery == "regular"


async def test_member_token_leave_needs_no_authentication(server_factory, sink, rsa_key):
    """NAME-leave+TOKEN is the member's own way out: one step, signed or not."""
    srv = await dkim_server(server_factory, rsa_key)
    leave = f"networking-leave+{member(srv, ANN).token}@{DOMAIN}"
    await asend(srv.smtp_port, STRANGER, leave, mail(leave, "leave"))
    await settled(srv)
    assert member(srv, ANN).status == "left"


async def test_reading_commands_need_no_authentication(server_factory, sink, rsa_key):
    """help and info are answered to the From address without a confirmation round."""
    srv = await dkim_server(server_factory, rsa_key)
    await asend(srv.smtp_port, ANN, REQUEST, mail(REQUEST, "info"))
    await settled(srv)
    (reply,) = await mails_to(sink, ANN)
    assert reply["Reply-To"] is None or "confirm" not in str(reply["Reply-To"])


async def test_results_quote_only_command_words_to_an_unauthenticated_sender(
    server_factory, sink, rsa_key
):
    """A stranger's free text after a command word is not echoed (no backscatter payload)."""
    srv = await dkim_server(server_factory, rsa_key)
    body = "help Visit http://spam.example/pills now\ninfo"
    await asend(srv.smtp_port, STRANGER, REQUEST, mail(REQUEST, "commands", body))
    await settled(srv)
    for reply in await mails_to(sink, ANN):
        assert "spam.example" not in reply.get_content()


async def test_held_reply_to_a_forged_from_does_not_quote_the_subject(
    server_factory, sink, rsa_key
):
    """A non-member post in someone's name is held; their 'held' note quotes no stranger's words."""
    srv = await dkim_server(server_factory, rsa_key)
    victim = "victim@example.org"
    raw = mail(LIST, "Cheap pills at spam.example", "buy now", sender=victim)
    await asend(srv.smtp_port, STRANGER, LIST, raw)
    await settled(srv)
    (note,) = await mails_to(sink, victim)
    assert "waiting for" in note.get_content() and "spam.example" not in note.get_content()


async def test_held_reply_to_a_signed_sender_quotes_the_subject(server_factory, sink, rsa_key):
    """When the From is authenticated, the note says which message is waiting."""
    srv = await dkim_server(server_factory, rsa_key)
    raw = signed(mail(LIST, "Hiring at Acme", "hi", sender="carol@example.com"), rsa_key[0])
    await asend(srv.smtp_port, "carol@example.com", LIST, raw)
    await settled(srv)
    (note,) = await mails_to(sink, "carol@example.com")
    assert '"Hiring at Acme"' in note.get_content()


async def test_dkim_keys_are_looked_up_before_the_write_never_on_the_writer_thread(
    server_factory, sink, rsa_key
):
    """A DKIM key is looked up while the message is prepared, so a slow DNS cannot stall the
    store's one writer (and with it every save); the signed change still takes effect."""
    import threading

    asked_on: list[str] = []
    known = stub_txt(rsa_key[1])

    def txt(name: str):  # type: ignore[no-untyped-def]
        asked_on.append(threading.current_thread().name)
        return known(name)

    srv = await server_factory(sender_auth="dkim", dkim_txt=txt)
    add_members(srv, ANN)
    await asend(srv.smtp_port, ANN, REQUEST, signed(mail(REQUEST, "digest"), rsa_key[0]))
    raw = signed(mail(LIST, "Hiring at Acme", "hi", sender="carol@example.com"), rsa_key[0])
    await asend(srv.smtp_port, "carol@example.com", LIST, raw)
    await settled(srv)
    assert member(srv, ANN).delivery == "digest"
    (note,) = await mails_to(sink, "carol@example.com")
    assert '"Hiring at Acme"' in note.get_content()
    assert asked_on and "store-writer" not in asked_on
