"""DMARC through a running server: posts from p=reject/quarantine domains are munged or wrapped."""

from __future__ import annotations

from email.headerregistry import Address

from tests.conftest import DOMAIN, Received, add_members, asend, make_message, wait_for

REJECT = {"_dmarc.example.com": "v=DMARC1; p=reject"}
QUARANTINE = {"_dmarc.example.com": "v=DMARC1; p=quarantine"}
NONE = {"_dmarc.example.com": "v=DMARC1; p=none; rua=mailto:d@example.com"}
VIA = "Ann Lee via Tri-County Job Seekers Networking"
LIST = f"networking@{DOMAIN}"

BODY = (
    "Hi all,\r\n"
    "The café on Main St is hiring baristas: ask for Zoë.   \r\n"
    "A line that is quite long, so long that a careless re-encoder would wrap it somewhere near here.\r\n"
    "\r\n"
    ".leading dot and trailing blanks  \r\n"
    "-- \r\n"
    "Ann\r\n"
).encode()

POST = (
    make_message("""
    From: Ann Lee <ann@example.com>
    To: networking@lists.example.org
    Cc: Bob Stone <bob@example.net>
    Subject: Barista jobs downtown
    Date: Mon, 23 Nov 2026 09:00:00 +0000
    Message-ID: <dmarc-post-1@example.com>
    DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to:subject; bh=AAAA; b=BBBB
    MIME-Version: 1.0
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: 8bit

    """)
    + BODY
)


async def post_and_receive(
    srv, sink, raw: bytes = POST, sender: str = "ann@example.com"
) -> Received:  # type: ignore[no-untyped-def]
    """Post as Ann to the list and return the copy Carol (a plain member) receives."""
    add_members(
        srv, "ann@example.com", "bob@example.net", "carol@example.org", "ann@mail.example.com"
    )
    await asend(srv.smtp_port, sender, LIST, raw)
    await wait_for(lambda: sink.to("carol@example.org"), what="carol's copy")
    return sink.to("carol@example.org")[0]


def addresses(value: object) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr_spec) for a in getattr(value, "addresses", ())]


def text(value: str) -> str:
    """Text with LF line ends (the email package keeps CRLF in 8-bit parts)."""
    return value.replace("\r\n", "\n")


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1]


async def test_munge_with_reply_to_list_sends_from_the_list_and_cc_the_author(server_factory, sink):
    """p=reject, dmarc = munge, reply_to = list: From is "Ann via Title" <list>, Ann goes to Cc."""
    srv = await server_factory(dmarc="munge", records=REJECT)

    copy = await post_and_receive(srv, sink)
    msg = copy.msg

    assert addresses(msg["From"]) == [(VIA, LIST)]
    assert addresses(msg["Cc"]) == [
        ("Bob Stone", "bob@example.net"),
        ("Ann Lee", "ann@example.com"),
    ]
    assert addresses(msg["Reply-To"]) == [("", LIST)]
    assert msg["X-Original-From"] == "Ann Lee <ann@example.com>"
    assert msg["To"] == LIST
    assert msg["Subject"] == "[networking] Barista jobs downtown"
    assert msg["Message-ID"] == "<dmarc-post-1@example.com>"
    assert msg["DKIM-Signature"] is None, "a signature the list broke is removed"
    assert msg["List-Id"] == "Tri-County Job Seekers Networking <networking.lists.example.org>"
    assert len(msg.get_all("From")) == 1 and len(msg.get_all("Cc")) == 1


async def test_munged_from_header_reads_as_the_quoted_via_name(server_factory, sink):
    """The From field decodes to exactly '"Ann Lee via Tri-County Job Seekers Networking" <list>'."""
    srv = await server_factory(dmarc="munge", records=REJECT)

    copy = await post_and_receive(srv, sink)

    expected = Address(display_name=VIA, addr_spec=LIST)
    assert str(copy.msg["From"]) in (str(expected), f'"{VIA}" <{LIST}>')


async def test_munge_with_reply_to_sender_puts_the_author_in_reply_to(server_factory, sink):
    """reply_to = sender: Reply-To is Ann herself and Cc stays as she wrote it."""
    srv = await server_factory(dmarc="munge", records=REJECT, list_extra='reply_to = "sender"\n')

    msg = (await post_and_receive(srv, sink)).msg

    assert addresses(msg["From"]) == [(VIA, LIST)]
    assert addresses(msg["Reply-To"]) == [("Ann Lee", "ann@example.com")]
    assert addresses(msg["Cc"]) == [("Bob Stone", "bob@example.net")]
    assert msg["X-Original-From"] == "Ann Lee <ann@example.com>"


async def test_munge_leaves_the_body_byte_for_byte(server_factory, sink):
    """Only header fields change: the 8-bit body arrives exactly as Ann sent it."""
    srv = await server_factory(dmarc="munge", records=REJECT)

    copy = await post_and_receive(srv, sink)

    assert body_of(copy.raw) == BODY
    assert text(copy.msg.get_content()) == text(BODY.decode("utf-8"))


async def test_wrap_attaches_the_untouched_original_as_message_rfc822(server_factory, sink):
    """dmarc = wrap: a new message From the list carrying Ann's post unchanged as an attachment."""
    srv = await server_factory(dmarc="wrap", records=REJECT, list_extra='reply_to = "sender"\n')

    copy = await post_and_receive(srv, sink)
    msg = copy.msg

    assert POST in copy.raw, "the original is attached byte for byte"
    assert addresses(msg["From"]) == [(VIA, LIST)]
    assert addresses(msg["Reply-To"]) == [("Ann Lee", "ann@example.com")]
    assert msg["Subject"] == "[networking] Barista jobs downtown"
    assert msg["List-Id"] == "Tri-County Job Seekers Networking <networking.lists.example.org>"
    assert msg.get_content_type() == "multipart/mixed"
    note, attached = msg.get_payload()
    assert note.get_content_type() == "text/plain" and "Ann Lee" in note.get_content()
    assert attached.get_content_type() == "message/rfc822"
    original = attached.get_content()
    assert original["From"] == "Ann Lee <ann@example.com>"
    assert original["Subject"] == "Barista jobs downtown"
    assert original["DKIM-Signature"] is not None, "the original keeps its signature"
    assert text(original.get_content()) == text(BODY.decode("utf-8"))


async def test_quarantine_policy_is_munged_too(server_factory, sink):
    """p=quarantine asks the same care as p=reject."""
    srv = await server_factory(dmarc="munge", records=QUARANTINE)

    msg = (await post_and_receive(srv, sink)).msg

    assert addresses(msg["From"]) == [(VIA, LIST)]


async def test_subdomain_sender_inherits_the_organisational_policy(server_factory, sink):
    """ann@mail.example.com with only _dmarc.example.com (p=reject, no sp=) is munged."""
    srv = await server_factory(dmarc="munge", records=REJECT)
    raw = POST.replace(b"From: Ann Lee <ann@example.com>", b"From: Ann Lee <ann@mail.example.com>")

    msg = (await post_and_receive(srv, sink, raw, sender="ann@mail.example.com")).msg

    assert addresses(msg["From"]) == [(VIA, LIST)]
    assert msg["X-Original-From"] == "Ann Lee <ann@mail.example.com>"


async def test_p_none_leaves_from_alone(server_factory, sink):
    """A domain publishing p=none needs nothing: From, Cc and Reply-To are as usual."""
    srv = await server_factory(dmarc="munge", records=NONE)

    msg = (await post_and_receive(srv, sink)).msg

    assert addresses(msg["From"]) == [("Ann Lee", "ann@example.com")]
    assert addresses(msg["Cc"]) == [("Bob Stone", "bob@example.net")]
    assert msg["X-Original-From"] is None


async def test_no_dmarc_record_leaves_from_alone(server_factory, sink):
    """A domain with no DMARC record at all is sent with its own From."""
    srv = await server_factory(dmarc="munge", records={})

    msg = (await post_and_receive(srv, sink)).msg

    assert addresses(msg["From"]) == [("Ann Lee", "ann@example.com")]
    assert msg["X-Original-From"] is None


async def test_list_with_dmarc_none_never_rewrites(server_factory, sink):
    """dmarc = none on the list: even a p=reject author keeps their From."""
    srv = await server_factory(dmarc="none", records=REJECT)

    copy = await post_and_receive(srv, sink)

    assert addresses(copy.msg["From"]) == [("Ann Lee", "ann@example.com")]
    assert body_of(copy.raw) == BODY
