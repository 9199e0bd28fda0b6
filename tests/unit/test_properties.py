"""Property tests: VERP round-trips, recipient splitting, subject prefixes and raw messages."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from listserv.addresses import (
    is_valid_address,
    list_address,
    split_recipient,
    verp_decode,
    verp_encode,
)
from listserv.config import Site
from listserv.headers import ONE_CLICK, member_fields
from listserv.message import RawMessage, fold, fold_uris, parse
from listserv.posting import prefixed_subject

DOMAIN = "lists.example.org"
ATOM = string.ascii_lowercase + string.digits + "!#$%&'*/?^_`{|}~-"

atoms = st.text(alphabet=ATOM + "=+", min_size=1, max_size=12)
local_parts = st.lists(atoms, min_size=1, max_size=4).map(".".join).filter(lambda s: len(s) <= 64)
labels = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
domains = st.lists(labels, min_size=2, max_size=4).map(".".join)
addresses = st.builds(lambda local, dom: f"{local}@{dom}", local_parts, domains)
list_names = st.from_regex(r"\A[a-z0-9][a-z0-9._]{0,15}\Z").filter(
    lambda n: ".." not in n and not n.endswith(".")
)
suffixes = st.sampled_from(
    ["", "request", "join", "subscribe", "leave", "unsubscribe", "owner", "confirm"]
)


def random_case(draw_bits: list[bool], text: str) -> str:
    return "".join(
        c.upper() if bit else c
        for c, bit in zip(text, draw_bits + [False] * len(text), strict=False)
    )


@given(addresses)
def test_verp_round_trip_recovers_the_member_address(addr):
    """verp_decode(detail of verp_encode(addr)) gives back addr, even with '=', '+' and '.' in it."""
    assume(is_valid_address(addr))
    envelope = verp_encode("networking", DOMAIN, addr)
    local, _, host = envelope.rpartition("@")
    assert host == DOMAIN
    base, plus, detail = local.partition("+")
    assert base == "networking-bounces" and plus == "+"
    assert verp_decode(detail) == addr


@given(addresses)
def test_verp_address_routes_back_to_the_bounce_handler(addr):
    """The VERP envelope sender is one of the list's own addresses: networking-bounces+DETAIL."""
    assume(is_valid_address(addr))
    envelope = verp_encode("networking", DOMAIN, addr)
    route = split_recipient(envelope, DOMAIN, {"networking"})
    assert route is not None
    name, suffix, detail = route
    assert (name, suffix) == ("networking", "bounces")
    assert verp_decode(detail) == addr


@given(
    list_names, suffixes, st.lists(st.booleans(), max_size=60), st.lists(st.booleans(), max_size=30)
)
def test_split_recipient_ignores_case(name, suffix, local_bits, domain_bits):
    """Upper-casing any letters of the local part or domain does not change the route."""
    local = name if not suffix else f"{name}-{suffix}"
    plain = split_recipient(f"{local}@{DOMAIN}", DOMAIN, {name})
    assert plain is not None and plain[0] == name
    shouted = f"{random_case(local_bits, local)}@{random_case(domain_bits, DOMAIN)}"
    assert split_recipient(shouted, DOMAIN, {name}) == plain


subjects = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
reply_markers = st.sampled_from(["Re: ", "RE: ", "re:", "Aw: ", "Re[2]: ", "SV: "])
prefixes = st.sampled_from(["[networking] ", "[dev] ", "[a.b] ", ""])


@given(subjects, prefixes)
def test_prefixed_subject_is_idempotent(subject, prefix):
    """Prefixing an already prefixed subject changes nothing."""
    once = prefixed_subject(subject, prefix)
    assert prefixed_subject(once, prefix) == once


@given(subjects, prefixes, st.lists(reply_markers, max_size=4))
def test_prefix_is_never_stacked_on_replies(subject, prefix, markers):
    """A reply to a prefixed subject carries the prefix once and at most one 'Re:' after it."""
    once = prefixed_subject(subject, prefix)
    again = prefixed_subject("".join(markers) + "Re: " + once, prefix)
    tag = prefix.strip()
    if tag:
        assert again.startswith(tag + " ")
        assert again.lower().count(tag.lower()) <= max(1, once.lower().count(tag.lower()))
    assert not again.lower().removeprefix(tag.lower()).strip().startswith("re: re:")
    assert prefixed_subject(again, prefix) == again


def test_prefix_example_from_the_spec():
    """'Re: [networking] Re: [networking] x' becomes '[networking] Re: x'."""
    assert (
        prefixed_subject("Re: [networking] Re: [networking] x", "[networking] ")
        == "[networking] Re: x"
    )


header_values = st.text(
    alphabet=string.ascii_letters + string.digits + " .,:;<>@-_", min_size=1, max_size=40
)
bodies = st.binary(max_size=400).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"\r\n"))


@given(header_values, header_values, bodies)
def test_raw_message_round_trip_keeps_body_bytes(subject, sender, body):
    """RawMessage(raw).to_bytes() keeps the body exactly, also after its headers are edited."""
    raw = (
        f"From: {sender}\r\nSubject: {subject}\r\nMessage-ID: <x@example.com>\r\n\r\n"
    ).encode() + body
    msg = RawMessage(raw)
    assert msg.to_bytes() == raw
    msg.set("Subject", "[networking] changed")
    msg.add("List-Id", "Networking <networking.lists.example.org>")
    msg.remove("Message-ID")
    out = msg.to_bytes()
    head, _, out_body = out.partition(b"\r\n\r\n")
    assert out_body == body
    assert b"Message-ID" not in head and b"List-Id: " in head


tokens = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=120)
odd_tokens = st.text(alphabet=string.printable, min_size=1, max_size=60)
base_urls = st.sampled_from(
    ["https://lists.example.org", "http://127.0.0.1:8080", "https://x.test/" + "QQ" * 40]
)


def folded_afresh(name: str, site: Site, token: str) -> bytes:
    value = f"<{site.url('u', token)}>, <mailto:{list_address(name, site.domain, 'leave', token)}>"
    return fold_uris("List-Unsubscribe", value) + ONE_CLICK


@given(list_names, base_urls, st.one_of(tokens, odd_tokens))
def test_member_fields_are_the_bytes_the_email_package_folds_for_that_token(name, url, token):
    """The per-copy List-Unsubscribe fields, built from a fold made once per list and token
    length, are byte for byte what folding them for this member gives (any token, any URL)."""
    site = Site(DOMAIN, url)
    assert member_fields(name, site, token) == folded_afresh(name, site, token)


field_names = st.sampled_from(["Subject", "From", "To", "Reply-To", "X-Note", "Message-ID"])
field_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=120,
)


def foldable(name: str, value: str) -> bool:
    try:
        fold(name, value)
    except Exception:  # noqa: BLE001 - the email package cannot write it (set() fails alike)
        return False
    return True


@given(field_names, field_values, field_values)
def test_a_field_reads_the_same_whether_or_not_the_whole_header_block_was_parsed(
    name, received, changed
):
    """RawMessage.get decodes one field without parsing the block; it reads exactly what the
    email package's parse of the whole block reads, as received and after set()."""
    assume(all(foldable(name, value) for value in (received, changed)))
    raw = RawMessage(b"From: a@example.org\r\n\r\nbody\r\n")
    raw.set(name, received)
    received_bytes = raw.to_bytes()
    lazy, eager = RawMessage(received_bytes), RawMessage(received_bytes)
    assert eager.parsed is not None  # parsed up front, as every message was before
    assert lazy.get(name) == eager.get(name)
    lazy.set(name, changed)
    eager.set(name, changed)
    assert lazy.get(name) == eager.get(name)


@pytest.mark.parametrize(
    "raw",
    [
        b"From: member@example.org\rX-Evil: attacker@evil.example\r\nSubject: hi\r\n\r\nbody",
        b"From: a@example.org\r\ngarbage line\r\nSubject: hi\r\n\r\nbody",
        b"From: a@example.org\r\nSubject : hi\r\n\r\nbody",
        b"From a@b Mon Jan  1 00:00:00 2024\r\nSubject: hi\r\n\r\nbody",
        b" folded\r\nSubject: hi\r\n\r\nbody",
        b": nothing\r\nSubject: hi\r\n\r\nbody",
    ],
    ids=["bare CR", "garbage line", "space before colon", "mbox From", "continuation", "no name"],
)
def test_a_malformed_header_block_reads_as_the_email_package_reads_it(raw):
    """A block RawMessage cannot read field by field (a bare CR, a line that is no field) is
    read by parsing it whole, as before: a field after the oddity is what the email package
    says, and a bare CR does not hide a second field in the From address."""
    parsed = parse(raw)
    for name in ("from", "subject", "x-evil"):
        value = parsed.get(name)
        assert RawMessage(raw).get(name) == ("" if value is None else str(value))
