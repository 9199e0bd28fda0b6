"""Bounded work per message: the checks made before the 250 (listserv/limits.py)."""

from __future__ import annotations

from listserv.limits import Limits, check, mime_shape
from tests import fuzz


def test_nesting_is_measured_without_parsing_and_refused_past_the_limit():
    """MIME nested 1,000 deep (a RecursionError in the parser) is refused with 552."""
    raw = fuzz.crlf(fuzz.nested(1000))
    assert mime_shape(raw, Limits())[0] > Limits().mime_depth
    assert (check(raw, Limits()) or "").startswith("552 5.3.4 MIME parts nested too deep")


def test_message_rfc822_nesting_counts_as_depth():
    """Messages attached inside messages count toward the depth, like multiparts."""
    assert mime_shape(fuzz.crlf(fuzz.nested(20, "rfc822")), Limits())[0] == 20


def test_ordinary_nesting_and_parts_pass():
    """A message 25 deep with its parts is within the defaults."""
    raw = fuzz.crlf(fuzz.nested(25))
    depth, parts = mime_shape(raw, Limits())
    assert (depth, parts) == (25, 25)
    assert check(raw, Limits()) is None


def test_too_many_parts_are_refused():
    """More parts than mime_parts: 552 naming the limit."""
    parts = "".join("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(30))
    raw = (
        'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"{parts}--b--\r\n"
    ).encode()
    assert (check(raw, Limits(mime_parts=10)) or "").startswith("552 5.3.4 Too many MIME parts")


def test_header_size_counts_only_the_header_block():
    """A big body is not a big header."""
    raw = b"Subject: hi\r\n\r\n" + b"body line\r\n" * 100_000
    assert check(raw, Limits(header_bytes=1024)) is None
    assert check(b"X: " + b"y" * 2000 + b"\r\n\r\nbody", Limits(header_bytes=1024)) is not None


def test_a_huge_folded_field_reads_as_its_first_part():
    """A field over BIG_FIELD bytes is read from its start, not handed whole to the email
    package (whose header parsing is quadratic)."""
    from listserv.message import BIG_FIELD, RawMessage

    raw = (
        b"From: a@example.com\r\nSubject: =?utf-8?q?caf=C3=A9?= start\r\n"
        + (b" more words of a folded subject\r\n" * 40_000)
        + b"\r\nbody\r\n"
    )
    subject = RawMessage(raw).get("subject")
    assert subject.startswith("caf\u00e9 start more words")
    assert len(subject) <= BIG_FIELD
