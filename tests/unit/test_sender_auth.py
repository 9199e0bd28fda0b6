"""Tests for listserv.sender_auth: DKIM with locally made keys and a stub TXT lookup, the
Authentication-Results reader, and the none mode."""

from __future__ import annotations

import base64
import hashlib
import os

import dkim  # type: ignore[import-untyped]
import dkim.dknewkey  # type: ignore[import-untyped]
import dns.exception
import dns.resolver
import pytest
from dkim.canonicalization import CanonicalizationPolicy  # type: ignore[import-untyped]
from dkim.crypto import parse_pem_private_key  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from listserv import sender_auth
from listserv.sender_auth import SenderAuth, TxtCache, Verdict, aligned, dnspython_txt

FROM = "ann@example.com"
MESSAGE = (
    b"From: Ann Example <ann@example.com>\r\n"
    b"To: networking-request@lists.example.org\r\n"
    b"Subject: leave\r\n"
    b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
    b"Message-ID: <1@mail.example.com>\r\n"
    b"\r\n"
    b"leave\r\n"
    b"I got a job, thanks all!\r\n"
)


class FakeTxt:
    """A TxtLookup stand-in: answers from a dict, raises exceptions stored in it, counts calls."""

    def __init__(self, zone: dict[str, object] | None = None):
        self.zone: dict[str, object] = zone if zone is not None else {}
        self.calls: list[str] = []

    def __call__(self, name: str) -> list[bytes] | None:
        self.calls.append(name)
        answer = self.zone.get(name)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="session")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A 2048-bit RSA key made by dkimpy's dknewkey: (private PEM, DNS TXT record)."""
    if not os.path.exists(dkim.dknewkey.OPENSSL_BINARY):
        pytest.skip("dknewkey needs openssl")
    path = tmp_path_factory.mktemp("dkim")
    dkim.dknewkey.GenRSAKeys(str(path / "rsa.key"), verbose=False)
    dkim.dknewkey.ExtractRSADnsPublicKey(str(path / "rsa.key"), str(path / "rsa.dns"), False)
    return (path / "rsa.key").read_bytes(), (path / "rsa.dns").read_bytes()


@pytest.fixture(scope="session")
def ed25519_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """An ed25519 key made by dknewkey (needs pynacl): (private base64, DNS TXT record)."""
    pytest.importorskip("nacl.signing")
    path = tmp_path_factory.mktemp("dkim")
    key = dkim.dknewkey.GenEd25519Keys(str(path / "ed.key"), verbose=False)
    dkim.dknewkey.ExtractEd25519PublicKey(str(path / "ed.dns"), key, verbose=False)
    return (path / "ed.key").read_bytes(), (path / "ed.dns").read_bytes()


def _sign(
    message: bytes, key: bytes, domain: bytes = b"example.com", selector: bytes = b"s1", **kw
) -> bytes:
    return dkim.sign(message, selector, domain, key, **kw) + message


def _zone(record: bytes, *domains: str, selector: str = "s1") -> FakeTxt:
    return FakeTxt({f"{selector}._domainkey.{d}": [record] for d in domains})


def _dkim(txt: FakeTxt, clock: Clock | None = None, **kw) -> SenderAuth:
    return SenderAuth("dkim", dns_txt=txt, now=clock or Clock(), **kw)


# -- dkim -------------------------------------------------------------------------------------


def test_valid_aligned_signature_passes(rsa_key):
    """A signature by the From domain, checked against its key, authenticates the sender."""
    key, record = rsa_key
    txt = _zone(record, "example.com")
    verdict = _dkim(txt).authenticated(_sign(MESSAGE, key), FROM)
    assert verdict == Verdict(True, "dkim", "dkim=pass d=example.com aligned with From")
    assert txt.calls == ["s1._domainkey.example.com"]


@pytest.mark.parametrize(
    ("signer", "author"),
    [("mail.example.com", "ann@example.com"), ("example.com", "ann@eu.example.com")],
)
def test_signature_by_a_related_domain_passes(rsa_key, signer, author):
    """Relaxed alignment: a subdomain of the From domain signs, or the other way round."""
    key, record = rsa_key
    raw = _sign(MESSAGE.replace(b"ann@example.com", author.encode()), key, signer.encode())
    verdict = _dkim(_zone(record, signer)).authenticated(raw, author)
    assert verdict.ok and verdict.detail == f"dkim=pass d={signer} aligned with From"


def test_unaligned_signature_fails_without_a_key_lookup(rsa_key):
    """A valid signature by another domain says nothing about the From address."""
    key, record = rsa_key
    txt = _zone(record, "evil.org")
    verdict = _dkim(txt).authenticated(_sign(MESSAGE, key, b"evil.org"), FROM)
    assert verdict == Verdict(False, "dkim", "signature d=evil.org not aligned with example.com")
    assert txt.calls == []


@pytest.mark.parametrize(
    ("signer", "author", "expected"),
    [
        ("example.com", "EXAMPLE.com.", True),
        ("a.b.example.co.uk", "example.co.uk", True),
        ("co.uk", "example.co.uk", False),
        ("com", "example.com", False),
        ("example.com.evil.org", "example.com", False),
        ("notexample.com", "example.com", False),
        ("", "example.com", False),
    ],
)
def test_alignment_is_by_organisational_domain(signer, author, expected):
    """Alignment compares organisational domains; a public suffix or a look-alike is not one."""
    assert aligned(signer, author) is expected


def test_signature_after_an_unaligned_one_passes(rsa_key):
    """Any one valid aligned signature is enough (an ESP's signature may come first)."""
    key, record = rsa_key
    raw = _sign(_sign(MESSAGE, key, b"example.com"), key, b"esp.net")
    verdict = _dkim(_zone(record, "example.com", "esp.net")).authenticated(raw, FROM)
    assert verdict.ok and "d=example.com" in verdict.detail


def test_body_changed_after_signing_fails(rsa_key):
    """Another body than the one signed (other commands) fails the body hash."""
    key, record = rsa_key
    raw = _sign(MESSAGE, key).replace(b"\r\n\r\nleave\r\n", b"\r\n\r\nalumni\r\n")
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, FROM)
    assert verdict == Verdict(False, "dkim", "signature d=example.com: body hash mismatch")


def test_from_changed_after_signing_fails(rsa_key):
    """A signed mail from Ann, relabelled as Bob's of the same domain, does not verify."""
    key, record = rsa_key
    raw = _sign(MESSAGE, key).replace(b"<ann@example.com>", b"<bob@example.com>")
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, "bob@example.com")
    assert verdict == Verdict(False, "dkim", "signature d=example.com does not verify")


def test_subject_changed_after_signing_fails(rsa_key):
    """Commands are read from the Subject too, so a changed Subject must fail."""
    key, record = rsa_key
    raw = _sign(MESSAGE, key).replace(b"Subject: leave", b"Subject: alumni")
    assert not _dkim(_zone(record, "example.com")).authenticated(raw, FROM).ok


def _sign_without_from(message: bytes, key: bytes) -> bytes:
    """A signature with h=to:subject; dkim.sign refuses to make one, so build it by hand."""
    signer = dkim.DKIM(message)
    signer.hasher = hashlib.sha256
    canon = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
    body_hash = base64.b64encode(hashlib.sha256(canon.canonicalize_body(signer.body)).digest())
    fields = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", b"relaxed/simple"),
        (b"d", b"example.com"),
        (b"s", b"s1"),
        (b"h", b"to : subject"),
        (b"bh", body_hash),
        (b"b", b""),
    ]
    value = signer.gen_header(
        fields, [b"to", b"subject"], canon, b"DKIM-Signature", parse_pem_private_key(key)
    )
    return b"DKIM-Signature: " + value + message


def test_signature_that_does_not_sign_from_fails(rsa_key):
    """dkimpy accepts a signature without From in h=; here it authenticates nobody."""
    key, record = rsa_key
    raw = _sign_without_from(MESSAGE, key).replace(b"ann@", b"mallory@")
    assert dkim.DKIM(raw).verify(dnsfunc=lambda name, timeout=5: record)  # the quirk
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, "mallory@example.com")
    assert verdict == Verdict(False, "dkim", "signature d=example.com does not sign From")


def test_signature_that_does_not_sign_subject_fails(rsa_key):
    """An unsigned Subject could be swapped for other commands."""
    key, record = rsa_key
    raw = _sign(MESSAGE, key, include_headers=[b"from", b"to"])
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, FROM)
    assert verdict == Verdict(False, "dkim", "signature d=example.com does not sign Subject")


@pytest.mark.parametrize("header", [b"Subject: alumni\r\n", b"From: ann@example.com\r\n"])
def test_a_second_subject_or_from_header_fails(rsa_key, header):
    """A header added on top of signed ones is what a reader sees first: refuse the pair."""
    key, record = rsa_key
    raw = header + _sign(MESSAGE, key)
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, FROM)
    assert not verdict.ok and verdict.detail.startswith("more than one")


def test_signature_over_part_of_the_body_fails(rsa_key):
    """With l= text can be appended after the signed part; it is not the member's whole mail."""
    key, record = rsa_key
    raw = _sign(MESSAGE, key, length=True) + b"alumni\r\n"
    assert dkim.DKIM(raw).verify(dnsfunc=lambda name, timeout=5: record)  # dkimpy accepts it
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, FROM)
    assert verdict == Verdict(
        False, "dkim", "signature d=example.com covers only part of the body (l=)"
    )


def test_signature_with_l_covering_the_whole_body_passes(rsa_key):
    """An l= that spans the whole body hides nothing."""
    key, record = rsa_key
    raw = _sign(MESSAGE, key, length=True)
    assert _dkim(_zone(record, "example.com")).authenticated(raw, FROM).ok


def test_message_without_signature_fails():
    """No DKIM-Signature: not authenticated, and no DNS asked."""
    txt = FakeTxt()
    assert _dkim(txt).authenticated(MESSAGE, FROM) == Verdict(False, "dkim", "no DKIM signature")
    assert txt.calls == []


def test_missing_key_fails(rsa_key):
    """A selector without a key record fails, naming the record."""
    key, _ = rsa_key
    verdict = _dkim(FakeTxt()).authenticated(_sign(MESSAGE, key), FROM)
    assert verdict == Verdict(False, "dkim", "no DKIM key at s1._domainkey.example.com")


def test_unusable_key_record_fails(rsa_key):
    """A key record that does not parse (or a revoked, empty p=) fails as a bad key."""
    key, _ = rsa_key
    txt = FakeTxt({"s1._domainkey.example.com": [b"v=DKIM1; k=rsa; p="]})
    verdict = _dkim(txt).authenticated(_sign(MESSAGE, key), FROM)
    assert not verdict.ok and verdict.detail.startswith("bad DKIM key at s1._domainkey.example.com")


def test_signature_by_another_key_fails(rsa_key, tmp_path):
    """A signature made with a key other than the published one does not verify."""
    key, _ = rsa_key
    dkim.dknewkey.GenRSAKeys(str(tmp_path / "other.key"), verbose=False)
    dkim.dknewkey.ExtractRSADnsPublicKey(
        str(tmp_path / "other.key"), str(tmp_path / "other.dns"), False
    )
    txt = _zone((tmp_path / "other.dns").read_bytes(), "example.com")
    verdict = _dkim(txt).authenticated(_sign(MESSAGE, key), FROM)
    assert verdict == Verdict(False, "dkim", "signature d=example.com does not verify")


def test_dns_timeout_fails_and_is_cached_briefly(rsa_key):
    """A timeout fails the check; it is remembered for FAILURE_TTL, then asked again."""
    key, _ = rsa_key
    txt, clock = FakeTxt({"s1._domainkey.example.com": dns.exception.Timeout()}), Clock()
    auth, raw = _dkim(txt, clock), _sign(MESSAGE, key)
    assert auth.authenticated(raw, FROM) == Verdict(False, "dkim", "dns timeout")
    assert auth.authenticated(raw, FROM) == Verdict(False, "dkim", "dns timeout")
    assert len(txt.calls) == 1
    clock.t += sender_auth.FAILURE_TTL + 1
    auth.authenticated(raw, FROM)
    assert len(txt.calls) == 2


def test_dns_server_failure_fails(rsa_key):
    """SERVFAIL (no nameserver answered) fails with its own reason."""
    key, _ = rsa_key
    txt = FakeTxt({"s1._domainkey.example.com": dns.resolver.NoNameservers()})
    verdict = _dkim(txt).authenticated(_sign(MESSAGE, key), FROM)
    assert verdict == Verdict(False, "dkim", "dns error (NoNameservers)")


def test_after_a_dns_failure_no_further_keys_are_looked_up(rsa_key):
    """One timeout per mail is the most a member's command waits for."""
    key, _ = rsa_key
    raw = _sign(_sign(MESSAGE, key, selector=b"s2"), key, selector=b"s1")
    txt = FakeTxt({"s1._domainkey.example.com": dns.exception.Timeout()})
    assert _dkim(txt).authenticated(raw, FROM).detail == "dns timeout"
    assert txt.calls == ["s1._domainkey.example.com"]


def test_keys_and_their_absence_are_cached(rsa_key):
    """A found key is kept POSITIVE_TTL, a missing one NEGATIVE_TTL."""
    key, record = rsa_key
    txt, clock = _zone(record, "example.com"), Clock()
    auth = _dkim(txt, clock)
    for _ in range(3):
        assert auth.authenticated(_sign(MESSAGE, key), FROM).ok
        assert not auth.authenticated(_sign(MESSAGE, key, selector=b"gone"), FROM).ok
    assert txt.calls == ["s1._domainkey.example.com", "gone._domainkey.example.com"]
    clock.t += sender_auth.NEGATIVE_TTL + 1
    auth.authenticated(_sign(MESSAGE, key, selector=b"gone"), FROM)
    auth.authenticated(_sign(MESSAGE, key), FROM)
    assert txt.calls[2:] == ["gone._domainkey.example.com"]


def test_cache_keeps_at_most_its_size():
    """The cache drops its oldest names when full."""
    txt = FakeTxt()
    cache = TxtCache(txt, now=Clock(), size=2)
    for name in ("a.test", "b.test", "c.test", "a.test"):
        cache(name)
    assert txt.calls == ["a.test", "b.test", "c.test", "a.test"]


def test_at_most_five_aligned_signatures_are_verified(rsa_key):
    """Signatures beyond MAX_SIGNATURES cost no DNS lookup and no RSA."""
    key, _ = rsa_key
    raw = MESSAGE
    for i in range(7):
        raw = _sign(raw, key, selector=f"s{i}".encode())
    txt = FakeTxt()
    assert not _dkim(txt).authenticated(raw, FROM).ok
    assert len(txt.calls) == sender_auth.MAX_SIGNATURES == 5


def test_oversized_message_is_not_verified(rsa_key):
    """Past max_bytes nothing is hashed or looked up; the change is confirmed by reply."""
    key, record = rsa_key
    txt = _zone(record, "example.com")
    raw = _sign(MESSAGE, key)
    verdict = _dkim(txt, max_bytes=len(raw) - 1).authenticated(raw, FROM)
    assert verdict == Verdict(False, "dkim", f"message too large to verify ({len(raw)} bytes)")
    assert txt.calls == []


def test_ed25519_signature_passes(ed25519_key):
    """RFC 8463 ed25519-sha256 signatures verify (with pynacl installed)."""
    key, record = ed25519_key
    raw = _sign(MESSAGE, key, signature_algorithm=b"ed25519-sha256")
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, FROM)
    assert verdict == Verdict(True, "dkim", "dkim=pass d=example.com aligned with From")


def test_message_signed_with_ed25519_and_rsa_passes(ed25519_key, rsa_key):
    """Mail signed with both passes on either: RSA when the ed25519 key is wrong, else ed25519."""
    ed_key, ed_record = ed25519_key
    rsa, rsa_record = rsa_key
    raw = _sign(
        _sign(MESSAGE, rsa, selector=b"rsa"),
        ed_key,
        selector=b"ed",
        signature_algorithm=b"ed25519-sha256",
    )
    txt = FakeTxt(
        {
            "rsa._domainkey.example.com": [rsa_record],
            "ed._domainkey.example.com": [
                b"v=DKIM1; k=ed25519; p=" + base64.b64encode(b"\x00" * 32)
            ],
        }
    )
    assert _dkim(txt).authenticated(raw, FROM).ok
    assert txt.calls == ["ed._domainkey.example.com", "rsa._domainkey.example.com"]
    both = FakeTxt({**txt.zone, "ed._domainkey.example.com": [ed_record]})
    assert _dkim(both).authenticated(raw, FROM).ok
    assert both.calls == ["ed._domainkey.example.com"]


SIG = (
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=example.com; s=s1; h=from : subject; "
)


@pytest.mark.parametrize(
    "raw",
    [
        b"DKIM-Signature: garbage\r\n" + MESSAGE,
        b"DKIM-Signature: v=1; d=example.com\r\n" + MESSAGE,
        b"DKIM-Signature: d=a; d=example.com\r\n" + MESSAGE,
        b"DKIM-Signature: 1=2; d=example.com\r\n" + MESSAGE,
        b"DKIM-Signature: v=1; d=ex\xe4mple.com; s=s1\r\n" + MESSAGE,
        SIG + b"bh=AAAA; b=@@@@\r\n" + MESSAGE,
        SIG + b"bh=AAAA; b=AAAA; l=\r\n" + MESSAGE,
        SIG + b"bh=AAAA; b=AAAA; l=99999999999999999999\r\n" + MESSAGE,
        SIG.replace(b"c=relaxed/simple", b"c=weird") + b"bh=AAAA; b=AAAA\r\n" + MESSAGE,
        SIG.replace(b"a=rsa-sha256", b"a=rsa-md5") + b"bh=AAAA; b=AAAA\r\n" + MESSAGE,
        SIG + b"bh=AAAA; b=AAAA; x=1\r\n" + MESSAGE,
        SIG + b"bh=AAAA; b=AAA\r\n" + MESSAGE,
        SIG.replace(b"s=s1", b"s=\xff..") + b"bh=AAAA; b=AAAA\r\n" + MESSAGE,
        SIG + b"bh=AAAA; b=AAAA\r\n" + MESSAGE.replace(b"\r\n\r\n", b"\r\nno colon here\r\n\r\n"),
        b"\x00\xff\r\n\r\n",
        b"",
    ],
)
def test_malformed_signature_or_message_fails_without_raising(raw, rsa_key):
    """Broken signatures and messages give a verdict, never an exception."""
    _, record = rsa_key
    verdict = _dkim(_zone(record, "example.com")).authenticated(raw, FROM)
    assert not verdict.ok and verdict.method == "dkim" and verdict.detail


PREFIXES = [b"", b"v=1; a=rsa-sha256; d=example.com; s=s1; h=from:subject; bh=AAAA; b=AAAA; "]


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from(PREFIXES),
    st.sampled_from(["dkim", "mta:mx.lists.example.org"]),
)
def test_arbitrary_header_bytes_never_raise(junk, prefix, mode):
    """Any bytes in a DKIM-Signature or Authentication-Results header yield a verdict."""
    if mode == "dkim":
        header = b"DKIM-Signature: " + prefix
    else:
        header = b"Authentication-Results: mx.lists.example.org; "
    raw = header + junk.replace(b"\n", b"\n ") + b"\r\n" + MESSAGE
    txt = FakeTxt({"s1._domainkey.example.com": [b"v=DKIM1; p=" + junk]})
    verdict = SenderAuth(mode, dns_txt=txt, now=Clock()).authenticated(raw, FROM)
    assert not verdict.ok and not verdict.detail.startswith("internal error")


def test_from_address_without_domain_fails():
    """There is no domain to align with."""
    verdict = _dkim(FakeTxt()).authenticated(MESSAGE, "ann")
    assert verdict == Verdict(False, "dkim", "From address has no domain")


# -- mta:ID -----------------------------------------------------------------------------------

MTA = "mta:mx.lists.example.org"


def _with_ar(*values: str) -> bytes:
    return b"".join(f"Authentication-Results: {v}\r\n".encode() for v in values) + MESSAGE


def _mta(*values: str, from_address: str = FROM) -> Verdict:
    return SenderAuth(MTA, dns_txt=FakeTxt()).authenticated(_with_ar(*values), from_address)


def test_mta_dkim_pass_aligned_passes():
    """Our MTA's dkim=pass for the From domain authenticates the sender."""
    verdict = _mta("mx.lists.example.org; dkim=pass header.d=example.com header.s=s1; spf=none")
    assert verdict == Verdict(
        True, "mta", "dkim=pass header.d=example.com aligned with From by mx.lists.example.org"
    )


def test_mta_dkim_pass_by_subdomain_or_identity_passes():
    """header.d may be a related domain, and header.i stands in when d is missing."""
    assert _mta("mx.lists.example.org; dkim=pass header.d=mail.example.com").ok
    assert _mta("mx.lists.example.org; dkim=pass header.i=@eu.example.com").ok


def test_mta_dmarc_pass_passes():
    """dmarc=pass for the From domain is enough, whatever the dkim results."""
    verdict = _mta(
        "mx.lists.example.org; dkim=fail header.d=example.com;"
        " dmarc=pass (p=reject dis=none) header.from=example.com"
    )
    assert verdict == Verdict(
        True, "mta", "dmarc=pass header.from=example.com by mx.lists.example.org"
    )


def test_mta_results_from_another_authserv_id_are_ignored():
    """A header anyone could have written (a forged authserv-id) authenticates nothing."""
    verdict = _mta(
        "mx.evil.org; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
    )
    assert verdict == Verdict(
        False, "mta", "no Authentication-Results from mx.lists.example.org (1 from others ignored)"
    )


def test_mta_dkim_fail_fails():
    """A failing signature reported by our MTA fails."""
    verdict = _mta("mx.lists.example.org; dkim=fail (bad signature) header.d=example.com")
    assert verdict == Verdict(False, "mta", "dkim=fail from mx.lists.example.org")


def test_mta_only_the_forged_header_saying_pass_fails():
    """Of two headers only ours counts: a forged one above it saying pass changes nothing."""
    verdict = _mta(
        "mx.lists.example.org.evil.org; dkim=pass header.d=example.com",
        "mx.lists.example.org; dkim=fail header.d=example.com; dmarc=fail header.from=example.com",
    )
    assert verdict == Verdict(False, "mta", "dkim=fail from mx.lists.example.org")


def test_mta_pass_for_another_domain_fails():
    """A pass for a domain other than the From domain's does not authenticate the From."""
    assert _mta("mx.lists.example.org; dkim=pass header.d=evil.org").detail == (
        "dkim=pass header.d=evil.org not aligned with example.com"
    )
    assert _mta("mx.lists.example.org; dmarc=pass header.from=evil.org").detail == (
        "dmarc=pass for header.from=evil.org, not example.com"
    )
    assert not _mta("mx.lists.example.org; dmarc=pass").ok


def test_mta_folded_header_and_case_are_read():
    """A folded header and an upper-case authserv-id are the same header."""
    raw = (
        b"Authentication-Results: MX.Lists.Example.ORG;\r\n"
        b"\tdkim=pass (2048-bit key) header.d=example.com header.i=@example.com;\r\n"
        b"\tspf=pass smtp.mailfrom=example.com\r\n" + MESSAGE
    )
    assert SenderAuth(MTA, dns_txt=FakeTxt()).authenticated(raw, FROM).ok


def test_mta_without_results_or_with_garbage_fails():
    """No header, a 'none' header, or one that does not parse: not authenticated."""
    assert _mta().detail == "no Authentication-Results from mx.lists.example.org"
    assert _mta("mx.lists.example.org; none").detail == (
        "no dkim or dmarc result from mx.lists.example.org"
    )
    assert _mta("mx.lists.example.org; dkim pass").detail == (
        "unparsable Authentication-Results from mx.lists.example.org"
    )


# -- none, modes, the default lookup ---------------------------------------------------------


def test_none_mode_trusts_from():
    """sender_auth = none takes From at its word (closed test setups only)."""
    verdict = SenderAuth("none", dns_txt=FakeTxt()).authenticated(MESSAGE, FROM)
    assert verdict.ok and verdict.method == "none"


@pytest.mark.parametrize("mode", ["", "dkim:x", "mta", "mta:", "spf", "none:yes"])
def test_unknown_mode_is_a_configuration_error(mode):
    """A mistyped sender_auth is refused when the list is set up, not at the first mail."""
    with pytest.raises(ValueError, match="sender_auth"):
        SenderAuth(mode, dns_txt=FakeTxt())


class FakeResolver:
    """Stands in for dns.resolver.Resolver: records lifetime and queries, answers from a dict."""

    def __init__(self, answers: dict[str, object], made: list[FakeResolver]):
        self.answers = answers
        self.lifetime = 0.0
        self.queries: list[tuple[str, str, bool]] = []
        made.append(self)

    def resolve(self, qname, rdtype, search=True):
        self.queries.append((str(qname), rdtype, search))
        answer = self.answers.get(str(qname))
        if isinstance(answer, Exception):
            raise answer
        return [type("Rdata", (), {"strings": strings}) for strings in answer]


def _fake_resolver(monkeypatch, answers: dict[str, object]) -> list[FakeResolver]:
    made: list[FakeResolver] = []
    monkeypatch.setattr(dns.resolver, "Resolver", lambda: FakeResolver(answers, made))
    return made


def test_default_lookup_uses_dnspython_with_a_short_lifetime(monkeypatch):
    """dnspython with a 2 s lifetime: records' strings joined, NXDOMAIN/no answer as None."""
    made = _fake_resolver(
        monkeypatch,
        {
            "s1._domainkey.example.com.": [(b"v=DKIM1; ", b"p=AB"), (b"other",)],
            "gone._domainkey.example.com.": dns.resolver.NXDOMAIN(),
            "none._domainkey.example.com.": dns.resolver.NoAnswer(),
            "slow._domainkey.example.com.": dns.exception.Timeout(),
        },
    )
    lookup = dnspython_txt()
    assert lookup("s1._domainkey.example.com") == [b"v=DKIM1; p=AB", b"other"]
    assert lookup("gone._domainkey.example.com") is None
    assert lookup("none._domainkey.example.com") is None
    with pytest.raises(dns.exception.Timeout):
        lookup("slow._domainkey.example.com")
    [resolver] = made
    assert resolver.lifetime == 2.0
    assert resolver.queries[0] == ("s1._domainkey.example.com.", "TXT", False)


def test_sender_auth_defaults_to_dnspython(monkeypatch, rsa_key):
    """Without a dns_txt the real resolver path is used (here faked at dnspython's class)."""
    key, record = rsa_key
    _fake_resolver(monkeypatch, {"s1._domainkey.example.com.": [(record,)]})
    assert SenderAuth().authenticated(_sign(MESSAGE, key), FROM).ok


def test_sender_auths_makes_one_verifier_per_mode_on_one_lookup():
    """A reload may change sender_auth: each mode gets its verifier once, on the same DNS lookup."""
    txt = FakeTxt()
    auths = sender_auth.SenderAuths(txt)
    assert auths("dkim") is auths("dkim")
    assert auths("mta:mx.example.org").method == "mta" and auths("none").method == "none"
    with pytest.raises(ValueError):
        auths("spf")
