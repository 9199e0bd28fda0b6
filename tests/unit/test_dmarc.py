"""Tests for listserv.dmarc: cached policy lookups (fake resolver, fake clock) and the rewrites."""

from __future__ import annotations

import logging
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage

import dns.exception
import dns.resolver
import pytest

from listserv import dmarc
from listserv.dmarc import (
    DmarcPolicies,
    munge_from,
    needs_dmarc_action,
    organisational_domain,
    wrap_message,
)

LIST = "networking@lists.example.org"
TITLE = "Networking"


class FakeDns:
    """A resolve_txt stand-in: answers from a dict, raises exceptions stored in it, counts calls."""

    def __init__(self, zone: dict[str, object]):
        self.zone = zone
        self.calls: list[str] = []

    def __call__(self, name: str) -> tuple[list[str], int]:
        self.calls.append(name)
        answer = self.zone.get(name, dns.resolver.NXDOMAIN())
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _policies(zone: dict[str, object]) -> tuple[DmarcPolicies, FakeDns, Clock]:
    fake, clock = FakeDns(zone), Clock()
    return DmarcPolicies(resolver=fake, now=clock), fake, clock


def _message(text: str) -> EmailMessage:
    return message_from_string(text, policy=policy.default)


POST = (
    'From: "Ann Lee" <ann@strict.example>\n'
    "To: networking@lists.example.org\n"
    "Cc: Raj Patel <raj@example.org>\n"
    "Subject: [Networking] Hiring: backend engineer\n"
    "Date: Tue, 09 Apr 2024 11:15:30 +0100\n"
    "Message-ID: <a1b2c3@strict.example>\n"
    "In-Reply-To: <prev@example.org>\n"
    "References: <root@example.org> <prev@example.org>\n"
    "Reply-To: Ann at home <ann@home.example>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n\n"
    "We are hiring; details below.\n"
)


@pytest.mark.parametrize("value", ["reject", "quarantine", "none"])
def test_policy_is_the_published_p_tag(value):
    """A domain's own v=DMARC1 record decides: p=reject, p=quarantine or p=none."""
    record = f"v=DMARC1; p={value}; rua=mailto:d@strict.example"
    policies, _, _ = _policies({"_dmarc.strict.example": ([record], 3600)})
    assert policies.policy("strict.example") == value


def test_record_is_parsed_tolerantly():
    """Upper case, odd spacing and a record split over strings-joined text still parse."""
    record = "V=DMARC1 ;  P = Reject ;pct=100"
    policies, _, _ = _policies({"_dmarc.strict.example": ([record], 3600)})
    assert policies.policy("Strict.Example.") == "reject"


def test_no_record_means_none():
    """NXDOMAIN at _dmarc.DOMAIN and at the organisational domain means policy 'none'."""
    policies, fake, _ = _policies({})
    assert policies.policy("mail.nopolicy.example") == "none"
    assert fake.calls == ["_dmarc.mail.nopolicy.example", "_dmarc.nopolicy.example"]


def test_txt_records_that_are_not_dmarc_are_ignored():
    """An SPF-looking TXT at _dmarc, or two DMARC records, count as no policy."""
    policies, _, _ = _policies(
        {
            "_dmarc.spf.example": (["v=spf1 -all"], 3600),
            "_dmarc.twice.example": (["v=DMARC1; p=reject", "v=DMARC1; p=none"], 3600),
        }
    )
    assert policies.policy("spf.example") == "none"
    assert policies.policy("twice.example") == "none"


def test_org_domain_fallback_uses_sp():
    """With no record at the subdomain, the organisational domain's sp= applies."""
    policies, fake, _ = _policies({"_dmarc.example.co.uk": (["v=DMARC1; p=none; sp=reject"], 3600)})
    assert policies.policy("mail.example.co.uk") == "reject"
    assert fake.calls[-1] == "_dmarc.example.co.uk"


def test_org_domain_fallback_uses_p_without_sp():
    """Without sp=, the organisational domain's p= applies to its subdomains."""
    policies, _, _ = _policies({"_dmarc.example.com": (["v=DMARC1; p=quarantine"], 3600)})
    assert policies.policy("eu.mail.example.com") == "quarantine"


def test_own_record_beats_org_domain():
    """A subdomain's own record is used rather than its parent's sp=."""
    policies, _, _ = _policies(
        {
            "_dmarc.news.example.com": (["v=DMARC1; p=none"], 3600),
            "_dmarc.example.com": (["v=DMARC1; p=reject; sp=reject"], 3600),
        }
    )
    assert policies.policy("news.example.com") == "none"


def test_organisational_domain_knows_two_label_public_suffixes():
    """co.uk, com.au, co.jp, org.uk, ac.uk and com.br keep three labels; others two."""
    assert organisational_domain("a.b.example.co.uk") == "example.co.uk"
    assert organisational_domain("x.example.com.au") == "example.com.au"
    assert organisational_domain("mail.example.co.jp") == "example.co.jp"
    assert organisational_domain("dept.example.ac.uk") == "example.ac.uk"
    assert organisational_domain("example.com.br") == "example.com.br"
    assert organisational_domain("lists.example.org") == "example.org"


def test_timeout_is_no_policy_logged_and_cached_briefly(caplog):
    """A timeout counts as 'none', logs a warning, and is retried after 60 seconds."""
    policies, fake, clock = _policies({"_dmarc.slow.example": dns.exception.Timeout()})
    with caplog.at_level(logging.WARNING, logger="listserv.dmarc"):
        assert policies.policy("slow.example") == "none"
    assert any("_dmarc.slow.example" in r.getMessage() for r in caplog.records)
    fake.zone["_dmarc.slow.example"] = (["v=DMARC1; p=reject"], 3600)
    clock.t += 30
    assert policies.policy("slow.example") == "none"
    clock.t += 31
    assert policies.policy("slow.example") == "reject"


def test_positive_answer_is_cached_for_its_ttl():
    """Within the TTL the resolver is not asked again; after it, it is."""
    policies, fake, clock = _policies({"_dmarc.strict.example": (["v=DMARC1; p=reject"], 600)})
    policies.policy("strict.example")
    clock.t += 599
    policies.policy("strict.example")
    assert fake.calls == ["_dmarc.strict.example"]
    clock.t += 2
    policies.policy("strict.example")
    assert fake.calls == ["_dmarc.strict.example"] * 2


def test_ttl_is_clamped_between_a_minute_and_a_day():
    """A 5-second TTL is kept 60 seconds; a week-long TTL only a day."""
    policies, fake, clock = _policies(
        {
            "_dmarc.short.example": (["v=DMARC1; p=reject"], 5),
            "_dmarc.long.example": (["v=DMARC1; p=reject"], 604800),
        }
    )
    policies.policy("short.example")
    policies.policy("long.example")
    clock.t += 59
    policies.policy("short.example")
    assert fake.calls.count("_dmarc.short.example") == 1
    clock.t += 86400
    policies.policy("long.example")
    assert fake.calls.count("_dmarc.long.example") == 2


def test_negative_answer_is_cached_for_five_minutes():
    """NXDOMAIN and NoAnswer are remembered for 300 seconds."""
    policies, fake, clock = _policies({"_dmarc.quiet.example": dns.resolver.NoAnswer()})
    policies.policy("quiet.example")
    clock.t += 299
    policies.policy("quiet.example")
    assert fake.calls.count("_dmarc.quiet.example") == 1
    clock.t += 2
    policies.policy("quiet.example")
    assert fake.calls.count("_dmarc.quiet.example") == 2


def test_default_resolver_joins_txt_strings_and_returns_ttl(monkeypatch):
    """default_resolver asks dnspython for TXT, 2 s lifetime, joining each record's strings."""

    class Rdata:
        strings = (b"v=DMARC1; ", b"p=reject")

    class Answer:
        rrset = type("RRset", (), {"ttl": 1800})()

        def __iter__(self):
            return iter([Rdata()])

    class FakeResolver:
        lifetime = 30.0

        def resolve(self, name, rdtype):
            assert (name, rdtype, self.lifetime) == ("_dmarc.strict.example", "TXT", 2.0)
            return Answer()

    monkeypatch.setattr(dmarc.dns.resolver, "Resolver", FakeResolver)
    assert dmarc.default_resolver()("_dmarc.strict.example") == (["v=DMARC1; p=reject"], 1800)


def test_needs_dmarc_action_only_for_reject_and_quarantine():
    """reject and quarantine need munging or wrapping; none does not."""
    assert needs_dmarc_action("reject") and needs_dmarc_action("quarantine")
    assert not needs_dmarc_action("none")


def test_munge_with_sender_reply_to_moves_author_to_reply_to():
    """reply_to='sender': From is the list 'via' the title, Reply-To the author, Cc unchanged."""
    msg = _message(POST)
    munge_from(msg, list_address=LIST, list_title=TITLE, reply_to_mode="sender")
    assert msg["From"].addresses[0].display_name == "Ann Lee via Networking"
    assert msg["From"].addresses[0].addr_spec == LIST
    assert len(msg.get_all("From")) == 1
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == ["ann@strict.example"]
    assert msg["Reply-To"].addresses[0].display_name == "Ann Lee"
    assert len(msg.get_all("Reply-To")) == 1
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["raj@example.org"]
    assert msg["X-Original-From"] == "Ann Lee <ann@strict.example>"


def test_munge_with_list_reply_to_adds_author_to_cc():
    """reply_to='list': the author is appended to Cc and Reply-To is left as it was."""
    msg = _message(POST)
    munge_from(msg, list_address=LIST, list_title=TITLE, reply_to_mode="list")
    assert str(msg["From"]) == f"Ann Lee via Networking <{LIST}>"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["raj@example.org", "ann@strict.example"]
    assert len(msg.get_all("Cc")) == 1
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == ["ann@home.example"]


def test_munge_does_not_add_author_to_cc_twice():
    """An author already in Cc (any case) is not added again."""
    cc_with_author = "raj@example.org, ANN@Strict.Example"
    msg = _message(POST.replace("Raj Patel <raj@example.org>", cc_with_author))
    munge_from(msg, list_address=LIST, list_title=TITLE, reply_to_mode="list")
    cc = [a.addr_spec.lower() for a in msg["Cc"].addresses]
    assert cc == ["raj@example.org", "ann@strict.example"]


def test_munge_without_display_name_uses_the_address_and_creates_cc():
    """With a bare From address, the name is the address; a missing Cc is created."""
    msg = _message("From: ann@strict.example\nTo: networking@lists.example.org\n\nbody\n")
    munge_from(msg, list_address=LIST, list_title=TITLE, reply_to_mode="list")
    assert msg["From"].addresses[0].display_name == "ann@strict.example via Networking"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["ann@strict.example"]


def test_munged_non_ascii_name_survives_serialisation():
    """A non-ASCII or comma-bearing display name is encoded by the email package, not pasted."""
    name = "=?utf-8?q?Jos=C3=A9_N=C3=BA=C3=B1ez=2C_PhD?="
    msg = _message(f"From: {name} <jose@strict.example>\nSubject: hi\n\nbody\n")
    munge_from(msg, list_address=LIST, list_title="Café, Talk", reply_to_mode="sender")
    reparsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert reparsed["From"].addresses[0].display_name == "José Núñez, PhD via Café, Talk"
    assert reparsed["From"].addresses[0].addr_spec == LIST


def test_munge_rejects_unknown_reply_to_mode():
    """An unknown reply_to_mode is an error naming the bad value."""
    with pytest.raises(ValueError, match="'poster'"):
        munge_from(_message(POST), list_address=LIST, list_title=TITLE, reply_to_mode="poster")


def test_wrap_produces_multipart_mixed_with_the_original_attached():
    """wrap_message: From the list, Reply-To the author, headers kept, original attached."""
    original = _message(POST)
    wrapped = wrap_message(original, list_address=LIST, list_title=TITLE)
    reparsed = message_from_bytes(wrapped.as_bytes(), policy=policy.default)
    assert reparsed.get_content_type() == "multipart/mixed"
    assert str(reparsed["From"]) == f"Ann Lee via Networking <{LIST}>"
    assert [a.addr_spec for a in reparsed["Reply-To"].addresses] == ["ann@strict.example"]
    for header in ("To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References"):
        assert str(reparsed[header]) == str(original[header]), header
    text, attached = reparsed.get_payload()
    assert text.get_content_type() == "text/plain"
    assert "A message from Ann Lee follows" in text.get_content()
    assert attached.get_content_type() == "message/rfc822"
    inner = attached.get_payload()[0]
    assert str(inner["From"]) == "Ann Lee <ann@strict.example>"
    assert inner.get_content().strip() == "We are hiring; details below."


def test_raw_utf8_from_header_is_munged_and_wrapped_without_errors():
    """An unencoded 8-bit UTF-8 From (common in the wild) yields clean encoded headers."""
    raw = "From: José <jose@strict.example>\nTo: l@example.org\nSubject: Café\n\nolé\n".encode()
    wrapped = wrap_message(
        message_from_bytes(raw, policy=policy.default), list_address=LIST, list_title=TITLE
    )
    munged = message_from_bytes(raw, policy=policy.default)
    munge_from(munged, list_address=LIST, list_title=TITLE, reply_to_mode="sender")
    for msg in (wrapped, munged):
        reparsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
        assert reparsed["From"].addresses[0].display_name == "José via Networking"
        assert reparsed["Reply-To"].addresses[0].display_name == "José"
