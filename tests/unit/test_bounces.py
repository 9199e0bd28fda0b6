"""Tests for listserv.bounces: real-world DSN/NDR samples and the bounce-likeness check."""

from __future__ import annotations

import json
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listserv.bounces.parse import BounceReport, is_bounce_like, parse_bounce, verp_member

DATA = Path(__file__).parents[1] / "data" / "bounces"
EXPECTED = json.loads((DATA / "expected.json").read_text())
SAMPLES = sorted(p.name for p in DATA.glob("*.eml"))


def _load(name: str) -> EmailMessage:
    return message_from_bytes((DATA / name).read_bytes(), policy=policy.default)


def _message(text: str) -> EmailMessage:
    return message_from_string(text, policy=policy.default)


def _without_dsn_part(msg: EmailMessage) -> EmailMessage:
    parts = msg.get_payload()
    msg.set_payload([p for p in parts if p.get_content_type() != "message/delivery-status"])
    return msg


def test_every_sample_is_listed_in_expected_json():
    """Each .eml sample has an entry in expected.json and vice versa."""
    assert SAMPLES == sorted(EXPECTED)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_parses_to_exactly_its_expected_failures(name):
    """Each real-world sample yields exactly the permanent and temporary sets on record."""
    report = parse_bounce(_load(name))
    assert report.permanent == frozenset(EXPECTED[name]["permanent"])
    assert report.temporary == frozenset(EXPECTED[name]["temporary"])


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_is_bounce_like(name):
    """Every sample bounce is recognised as a bounce."""
    assert is_bounce_like(_load(name))


def test_delayed_dsn_is_temporary_not_permanent():
    """A Postfix 'still being retried' warning counts only as a temporary failure."""
    report = parse_bounce(_load("postfix_delayed.eml"))
    assert report.permanent == frozenset()
    assert report.addresses == {"dan@slow.example.com"}


def test_verp_detail_of_a_bounce_names_the_member():
    """The '+ann=example.com' detail in the VERP To decodes to the member who bounced."""
    msg = _load("verp.eml")
    detail = str(msg["To"]).split("+", 1)[1].split("@", 1)[0]
    assert verp_member(detail) == "ann@example.com"
    assert verp_member("no-equals-sign") is None


def test_addresses_are_normalised():
    """Mixed-case addresses from X-Failed-Recipients come back lower-cased."""
    assert "old.member@example.co.uk" in parse_bounce(_load("exim.eml")).permanent


def test_global_delivery_status_is_read_although_flufl_skips_it():
    """An RFC 6533 message/global-delivery-status part (Postfix with SMTPUTF8) is parsed."""
    assert parse_bounce(_load("postfix_smtputf8.eml")).permanent == {"kim@example.jp"}


def test_microsoft_ndr_without_its_delivery_status_part_is_read_from_the_text():
    """A Microsoft 365 NDR stripped of its DSN part still yields 'Your message to X' recipient."""
    msg = _without_dsn_part(_load("office365.eml"))
    assert parse_bounce(msg).permanent == {"eve@contoso.com"}


def test_gmail_ndr_without_its_delivery_status_part_is_read_from_the_text():
    """A Gmail 'Address not found' NDR without DSN part or X-Failed-Recipients is still read."""
    msg = _without_dsn_part(_load("gmail.eml"))
    del msg["X-Failed-Recipients"]
    assert parse_bounce(msg).permanent == {"heidi.w@gmail.com"}


def test_gmail_temporary_problem_text_is_temporary():
    """Gmail's 'temporary problem delivering your message to X' is a temporary failure."""
    msg = _message(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        "Subject: Delivery Status Notification (Delay)\n\n"
        "** Message not delivered yet **\n\n"
        "There was a temporary problem delivering your message to ivan@example.com. "
        "Gmail will retry for 46 more hours.\n"
    )
    assert parse_bounce(msg) == BounceReport(temporary=frozenset({"ivan@example.com"}))


def test_addresses_in_the_returned_original_are_ignored():
    """Addresses quoted in the attached original message never count as failures."""
    msg = _message(
        "From: postmaster@example.net\nSubject: Undeliverable: hello\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nSomething went wrong.\n\n"
        "--b\nContent-Type: message/rfc822\n\nFrom: someone@example.org\nSubject: hi\n\n"
        "Your message to victim@example.org couldn't be delivered.\n--b--\n"
    )
    assert parse_bounce(msg).addresses == frozenset()


def test_normal_post_is_not_bounce_like_and_reports_nobody():
    """An ordinary member post is neither bounce-like nor a source of failures."""
    msg = _message(
        "Return-Path: <ann@example.com>\nFrom: Ann Lee <ann@example.com>\n"
        "To: networking@lists.example.org\nSubject: Anyone hiring in Leeds?\n"
        "Message-ID: <x1@example.com>\n\n"
        "I could not be delivered from this job search soon enough.\n"
    )
    assert not is_bounce_like(msg)
    assert parse_bounce(msg) == BounceReport()


@pytest.mark.parametrize(
    "headers",
    [
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nSubject: hello\n",
        "From: postmaster@example.net\nSubject: hello\n",
        "From: x@example.net\nSubject: Undeliverable: [Networking] hi\n",
        "From: x@example.net\nSubject: Delivery Status Notification (Failure)\n",
        "From: x@example.net\nSubject: Mail delivery failed: returning message to sender\n",
        "From: x@example.net\nSubject: failure notice\n",
        "From: x@example.net\nReturn-Path: <>\nSubject: hello\n",
        "From: x@example.net\nX-Failed-Recipients: a@example.org\nSubject: hello\n",
        "From: Microsoft Outlook\n"
        " <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@x.onmicrosoft.com>\n"
        "Subject: hello\n",
    ],
)
def test_bounce_signals_each_make_a_message_bounce_like(headers):
    """Each single bounce signal (sender, subject, null Return-Path, header) is enough."""
    assert is_bounce_like(_message(headers + "\nbody\n"))


REPORT = "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; "
_HEADERS = st.sampled_from(
    [
        "From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n",
        REPORT + 'boundary="b"\n\n',
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n',
        "Content-Type: text/plain; charset=bogus-charset\n\n",
        "",
    ]
)


@settings(max_examples=200, deadline=None)
@given(head=_HEADERS, body=st.text())
def test_parse_bounce_never_raises_on_arbitrary_bodies(head, body):
    """Whatever the body text, parse_bounce names only addresses that are in the message."""
    msg = _message(head + body)
    report = parse_bounce(msg)
    assert all(a in (head + body).lower() for a in report.addresses)
    assert not (report.permanent & report.temporary)
    if head.startswith("From: MAILER-DAEMON"):
        assert is_bounce_like(msg)


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "text/plain",
                    "message/delivery-status",
                    "message/global-delivery-status",
                    "message/rfc822",
                    "text/rfc822-headers",
                ]
            ),
            st.text(),
        ),
        max_size=4,
    )
)
def test_parse_bounce_never_raises_on_arbitrary_report_parts(parts):
    """Arbitrary text inside any kind of report part never makes parse_bounce raise."""
    body = "".join(f"--b\nContent-Type: {ctype}\n\n{text}\n" for ctype, text in parts) + "--b--\n"
    msg = _message(REPORT + 'boundary="b"\n\n' + body)
    report = parse_bounce(msg)
    assert all(a in body.lower() for a in report.addresses)
    assert is_bounce_like(msg)  # a multipart/report is a bounce, whatever is inside
