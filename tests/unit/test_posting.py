"""Unit tests for the posting pipeline: header hygiene, thread headers, DKIM and the body."""

from __future__ import annotations

from pathlib import Path

from listserv.config import Site, parse_config
from listserv.posting import decorate
from tests.conftest import config_text, make_message, parse_bytes

SITE = Site(domain="lists.example.org", base_url="https://lists.example.org")

RAW = make_message("""
    Return-Path: <ann@example.com>
    Delivered-To: networking@lists.example.org
    X-Original-To: networking@lists.example.org
    DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from:subject; b=abc
    From: Ann Lee <ann@example.com>
    To: networking@lists.example.org
    Subject: Re: interview tips
    Message-ID: <m2@example.com>
    In-Reply-To: <m1@example.com>
    References: <m0@example.com> <m1@example.com>
    List-Id: Other list <other.example.net>
    List-Unsubscribe: <mailto:other-leave@example.net>
    Precedence: bulk

    Practice the STAR answers out loud.
    """)


def lst():  # type: ignore[no-untyped-def]
    return parse_config(config_text(), Path("/tmp/listserv.toml")).lists["networking"]


def test_delivery_traces_and_other_lists_fields_are_stripped():
    """Return-Path, Delivered-To, X-Original-To and another list's List-* fields never pass on."""
    msg = parse_bytes(decorate(RAW, lst(), SITE))
    for name in ("Return-Path", "Delivered-To", "X-Original-To"):
        assert msg[name] is None
    assert msg.get_all("List-Id") == [
        "Tri-County Job Seekers Networking <networking.lists.example.org>"
    ]
    assert msg["List-Unsubscribe"] is None, "the per-member field is added at delivery"
    assert msg.get_all("Precedence") == ["list"]


def test_thread_headers_are_kept_so_threads_hold_together():
    """Message-ID, In-Reply-To and References pass unchanged."""
    msg = parse_bytes(decorate(RAW, lst(), SITE))
    assert msg["Message-ID"] == "<m2@example.com>"
    assert msg["In-Reply-To"] == "<m1@example.com>"
    assert msg["References"] == "<m0@example.com> <m1@example.com>"


def test_dkim_signature_is_dropped_when_a_signed_field_changes():
    """Prefixing the subject breaks the author's signature, so it is not forwarded."""
    msg = parse_bytes(decorate(RAW, lst(), SITE))
    assert msg["Subject"] == "[networking] Re: interview tips"
    assert msg["DKIM-Signature"] is None


def test_dkim_signature_is_kept_when_nothing_signed_changes():
    """No prefix and Reply-To left alone: the signature still verifies, so it stays."""
    plain = lst().model_copy(update={"subject_prefix": "", "reply_to": "sender"})
    msg = parse_bytes(decorate(RAW, plain, SITE))
    assert msg["DKIM-Signature"] is not None
    assert msg["Subject"] == "Re: interview tips"


def test_body_is_passed_byte_for_byte():
    """Only the header block changes; the body bytes are the ones received."""
    out = decorate(RAW, lst(), SITE)
    assert out.split(b"\r\n\r\n", 1)[1] == RAW.split(b"\r\n\r\n", 1)[1]
