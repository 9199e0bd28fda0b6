"""Sender authentication: is a mail really from the address in its From: header?

SPEC section 5, "Only the member changes a membership": a mail that changes a
membership takes effect at once only when it comes through one of the member's
tokens or is authenticated as the member's address; otherwise the change is
confirmed by one reply. This module answers the second question, by the list's
`sender_auth` setting:

- "dkim" (the default): a DKIM signature (verified by dkimpy) whose d= is
  aligned with the From: domain as DMARC's relaxed alignment has it (RFC 7489
  3.1.1: the same organisational domain). The signature must also sign From
  and Subject (commands are read from the Subject too), cover the whole body
  (no l= shorter than it), and the message may carry only one From and one
  Subject header, so a replayed signature cannot carry other commands.
- "mta:ID": an `Authentication-Results` header whose authserv-id is ID
  reporting dmarc=pass for the From domain, or dkim=pass with an aligned
  header.d (or header.i). Headers of any other authserv-id are ignored; the MTA
  in front must strip forged ones that carry its own ID (RFC 8601 section 5).
- "none": From: is trusted as it stands (closed test setups only).

Pure except for DNS, which goes through an injectable TXT lookup; its answers,
absences and failures are cached for a few minutes (failures briefly). The
work is bounded: messages over `max_bytes` are not verified, at most
MAX_SIGNATURES aligned signatures are, and after one DNS failure no further
lookups are made for that message. `SenderAuth.authenticated` never raises.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy as email_policy
from email.parser import BytesHeaderParser
from typing import Any

import authres
import dkim
import dns.exception
import dns.name
import dns.resolver
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import parse_tag_value

from listserv.dmarc import organisational_domain

log = logging.getLogger("listserv.sender_auth")

#: A TXT lookup: the name's TXT records (each record's strings joined), or None
#: when it has none (NXDOMAIN, no TXT); it raises on timeouts and server failures.
TxtLookup = Callable[[str], list[bytes] | None]

MODES = ("dkim", "mta:ID", "none")
DKIM_HEADER = re.compile(rb"(?im)^dkim-signature[ \t]*:")
MAX_BYTES = 1_000_000  # larger messages are not DKIM-verified (they get a confirmation)
MAX_SIGNATURES = 5  # aligned DKIM signatures verified per message
MAX_AR_HEADERS = 50  # Authentication-Results headers read per message, from the top
DNS_LIFETIME = 2.0  # seconds for one lookup, retries included
POSITIVE_TTL = 300.0  # a key record found
NEGATIVE_TTL = 60.0  # no such name, or no TXT there
FAILURE_TTL = 15.0  # timeouts, SERVFAIL: retry soon
CACHE_SIZE = 512
SIGNED_HEADERS = (b"from", b"subject")  # a signature must cover these
SINGLETON_HEADERS = (b"from", b"subject")  # at most one of each in a verified message


@dataclass(frozen=True)
class Verdict:
    """Whether the mail is authenticated as its From address, how, and one short reason."""

    ok: bool
    method: str  # "dkim", "mta" or "none"
    detail: str


class DnsFailure(Exception):
    """A TXT lookup that timed out or failed (not a mere absence); its text is the reason."""


class TxtCache:
    """TXT lookups through `lookup`, remembered: records POSITIVE_TTL, absence NEGATIVE_TTL,
    failures FAILURE_TTL (re-raised as DnsFailure while cached). At most `size` names."""

    def __init__(
        self,
        lookup: TxtLookup,
        now: Callable[[], float] = time.monotonic,
        size: int = CACHE_SIZE,
    ):
        self._lookup = lookup
        self._now = now
        self._size = size
        self._entries: dict[str, tuple[float, list[bytes] | None, str | None]] = {}

    def __call__(self, name: str) -> list[bytes] | None:
        key = name.strip().lower().rstrip(".")
        now = self._now()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            records, failure, ttl = self._fetch(key)
            self._remember(key, (now + ttl, records, failure), now)
        else:
            _, records, failure = entry
        if failure is not None:
            raise DnsFailure(failure)
        return records

    def cached(self, name: str) -> list[bytes] | None:
        """As a call, but never asks the DNS: a name not cached is a failure, and is not
        remembered (the store's writer must not wait on DNS, issue 12)."""
        entry = self._entries.get(name.strip().lower().rstrip("."))
        if entry is None or entry[0] <= self._now():
            raise DnsFailure("key not looked up in time")
        _, records, failure = entry
        if failure is not None:
            raise DnsFailure(failure)
        return records

    def _fetch(self, name: str) -> tuple[list[bytes] | None, str | None, float]:
        try:
            records = self._lookup(name)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None, None, NEGATIVE_TTL
        except dns.exception.Timeout:
            return None, "dns timeout", FAILURE_TTL
        except Exception as exc:  # noqa: BLE001 - SERVFAIL, no nameservers, a broken stub
            return None, f"dns error ({type(exc).__name__})", FAILURE_TTL
        if not records:
            return None, None, NEGATIVE_TTL
        return [bytes(r) for r in records], None, POSITIVE_TTL

    def _remember(
        self, key: str, entry: tuple[float, list[bytes] | None, str | None], now: float
    ) -> None:
        if key not in self._entries and len(self._entries) >= self._size:
            for stale in [k for k, e in self._entries.items() if e[0] <= now]:
                del self._entries[stale]
            while len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[key] = entry


def dnspython_txt(lifetime: float = DNS_LIFETIME) -> TxtLookup:
    """A TxtLookup through dnspython's stub resolver (system configuration, `lifetime` s)."""
    resolver: dns.resolver.Resolver | None = None

    def lookup(name: str) -> list[bytes] | None:
        nonlocal resolver
        if resolver is None:
            fresh = dns.resolver.Resolver()  # raises NoResolverConfiguration without one
            fresh.lifetime = lifetime
            resolver = fresh
        try:
            answer = resolver.resolve(dns.name.from_text(name), "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return [b"".join(rdata.strings) for rdata in answer]

    return lookup


def aligned(signing_domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment (RFC 7489 3.1.1): the same organisational domain.

    >>> aligned("mail.example.com", "example.com"), aligned("example.com", "evil.org")
    (True, False)
    """
    a, b = _domain(signing_domain), _domain(from_domain)
    if not a or not b:
        return False
    return a == b or organisational_domain(a) == organisational_domain(b)


class SenderAuth:
    """Decides whether a mail is authenticated as its From address, per `sender_auth`.

    `mode` is "dkim", "mta:AUTHSERV-ID" or "none" (anything else is a ValueError).
    `dns_txt` looks up DKIM keys (default: dnspython, 2 s); its results are cached
    on the clock `now`. Messages over `max_bytes` are not DKIM-verified.
    """

    def __init__(
        self,
        mode: str = "dkim",
        dns_txt: TxtLookup | None = None,
        *,
        now: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_BYTES,
    ):
        kind, sep, ident = mode.strip().partition(":")
        kind, ident = kind.strip().lower(), ident.strip().lower()
        if not ((kind in ("dkim", "none") and not sep) or (kind == "mta" and ident)):
            raise ValueError(
                f"sender_auth = {mode!r}: expected 'dkim', 'mta:AUTHSERV-ID' or 'none'"
            )
        self.method = kind
        self.authserv_id = ident
        self.max_bytes = max_bytes
        self._cache = TxtCache(dns_txt if dns_txt is not None else dnspython_txt(), now=now)
        self._txt: Callable[[str], list[bytes] | None] = self._cache

    def offline(self) -> SenderAuth:
        """This SenderAuth, answering from what prefetch() looked up and never asking the DNS:
        for the store's writer thread, where a slow DNS would stall every save (issue 12)."""
        view = copy.copy(self)
        view._txt = self._cache.cached
        return view

    def prefetch(self, raw: bytes, from_address: str) -> None:
        """Look up, before the write transaction, the DKIM keys authenticated(raw,
        from_address) will need (dkimpy asks for s._domainkey.d of each aligned signature)."""
        domain = _domain(from_address.strip().strip("<>").rpartition("@")[2])
        if self.method != "dkim" or not domain or len(raw) > self.max_bytes:
            return
        if not DKIM_HEADER.search(raw):
            return
        try:
            message = dkim.DKIM(raw, logger=_DKIMPY_LOG, timeout=DNS_LIFETIME)
        except Exception:  # noqa: BLE001 - authenticated() finds it malformed, with no lookup
            return
        signatures = [value for name, value in message.headers if name.lower() == b"dkim-signature"]
        tried = 0
        for value in signatures:
            tags = _tags(value)
            signing_domain = _domain_tag(tags) if tags is not None else ""
            if tags is None or not signing_domain or not aligned(signing_domain, domain):
                continue
            if tried == MAX_SIGNATURES:
                break
            tried += 1
            try:
                self._txt(
                    (tags.get(b"s", b"") + b"._domainkey." + tags.get(b"d", b"")).decode("ascii")
                )
            except DnsFailure:  # cached as failed: authenticated() will not wait on it again
                break
            except Exception:  # noqa: BLE001 - a name dkimpy would refuse as well
                continue

    def authenticated(self, raw: bytes, from_address: str) -> Verdict:
        """Whether `raw` (the whole message as received) is authenticated as `from_address`.

        `from_address` is the address in the message's From: header, as the caller read it.
        """
        if self.method == "none":
            return Verdict(True, "none", "From trusted unchecked (sender_auth = none)")
        domain = _domain(from_address.strip().strip("<>").rpartition("@")[2])
        if "@" not in from_address or not domain:
            return Verdict(False, self.method, "From address has no domain")
        try:
            if self.method == "mta":
                return self._mta(raw, domain)
            return self._dkim(raw, domain)
        except Exception as exc:  # a bug here must not bounce a member's mail
            log.exception("sender authentication of a mail from %s failed", from_address)
            return Verdict(False, self.method, f"internal error ({type(exc).__name__})")

    # -- dkim ------------------------------------------------------------------------------

    def _dkim(self, raw: bytes, from_domain: str) -> Verdict:
        def fail(detail: str) -> Verdict:
            return Verdict(False, "dkim", detail)

        if len(raw) > self.max_bytes:
            return fail(f"message too large to verify ({len(raw)} bytes)")
        try:
            message = dkim.DKIM(raw, logger=_DKIMPY_LOG, timeout=DNS_LIFETIME)
        except Exception:  # noqa: BLE001 - MessageFormatError, or worse on odd bytes
            return fail("malformed message")
        names = [name.lower() for name, _ in message.headers]
        signatures = [value for name, value in message.headers if name.lower() == b"dkim-signature"]
        if not signatures:
            return fail("no DKIM signature")
        for header in SINGLETON_HEADERS:
            if names.count(header) > 1:
                return fail(f"more than one {header.decode().title()} header")

        keys = _KeyLookup(self._txt)
        reasons: list[str] = []
        unaligned: list[str] = []
        tried = 0
        for idx, value in enumerate(signatures):
            tags = _tags(value)
            signing_domain = _domain_tag(tags) if tags is not None else ""
            if tags is None or not signing_domain:
                continue
            if not aligned(signing_domain, from_domain):
                unaligned.append(signing_domain)
                continue
            if tried == MAX_SIGNATURES:
                break
            tried += 1
            reason = _check_signature(message, idx, tags, signing_domain, keys)
            if reason is None:
                return Verdict(True, "dkim", f"dkim=pass d={signing_domain} aligned with From")
            reasons.append(reason)
            if keys.failed:  # the DNS is not answering: don't wait on it again for this mail
                break
        if reasons:
            return fail(reasons[0])
        if unaligned:
            return fail(f"signature d={unaligned[0]} not aligned with {from_domain}")
        return fail("malformed DKIM-Signature")

    # -- mta:ID ----------------------------------------------------------------------------

    def _mta(self, raw: bytes, from_domain: str) -> Verdict:
        ident = self.authserv_id

        def fail(detail: str) -> Verdict:
            return Verdict(False, "mta", detail)

        headers = BytesHeaderParser(policy=email_policy.compat32).parsebytes(raw)
        values = headers.get_all("Authentication-Results") or []
        reasons: list[str] = []
        trusted = others = 0
        for value in values[:MAX_AR_HEADERS]:
            text = _unfold(str(value))
            try:
                parsed = authres.AuthenticationResultsHeader.parse_value(text)
            except Exception:  # noqa: BLE001 - authres.core.SyntaxError and friends
                if text.split(";", 1)[0].split("(", 1)[0].strip().lower() == ident:
                    reasons.append(f"unparsable Authentication-Results from {ident}")
                continue
            if (parsed.authserv_id or "").lower() != ident:
                others += 1
                continue
            trusted += 1
            for result in parsed.results:
                verdict = _mta_result(result, from_domain, ident)
                if verdict is True:
                    return Verdict(True, "mta", _describe(result, ident))
                if verdict:
                    reasons.append(verdict)
        if reasons:
            return fail(reasons[0])
        if trusted:
            return fail(f"no dkim or dmarc result from {ident}")
        ignored = f" ({others} from others ignored)" if others else ""
        return fail(f"no Authentication-Results from {ident}{ignored}")


# -- helpers ---------------------------------------------------------------------------------


class _QuietDkimpyLog(logging.LoggerAdapter):
    """dkimpy logs each missing key or DNS timeout at ERROR; here those are verdicts: DEBUG."""

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)


_DKIMPY_LOG = _QuietDkimpyLog(logging.getLogger("listserv.sender_auth.dkimpy"), {})


class _KeyLookup:
    """dkimpy's dnsfunc(name: bytes, timeout) -> bytes | None, noting why a key was unusable."""

    def __init__(self, txt: Callable[[str], list[bytes] | None]):
        self._txt = txt
        self.detail: str | None = None  # of the last lookup, when it found no usable key
        self.failed = False  # a lookup timed out or failed

    def reset(self) -> None:
        self.detail = None

    def __call__(self, name: bytes, timeout: float = DNS_LIFETIME) -> bytes | None:
        try:
            qname = name.decode("ascii").strip().lower().rstrip(".")
            dns.name.from_text(qname)
        except (UnicodeDecodeError, dns.exception.DNSException):
            self.detail = "signature names no valid key record"
            return None
        try:
            records = self._txt(qname)
        except DnsFailure as exc:
            self.detail, self.failed = str(exc), True
            raise dkim.DnsTimeoutError(str(exc)) from None  # dkimpy: verify() returns False
        if not records:
            self.detail = f"no DKIM key at {qname}"
            return None
        # RFC 6376 3.6.2.2 leaves several records undefined; take the first that has a key.
        record = next((r for r in records if re.search(rb"(^|;)\s*p\s*=", r)), records[0])
        try:
            dkim.evaluate_pk(name, record)
        except dkim.NaClNotFoundError:
            self.detail = f"ed25519 key at {qname} needs pynacl"
        except Exception as exc:  # noqa: BLE001 - KeyFormatError, binascii.Error, ...
            self.detail = f"bad DKIM key at {qname}: {_short(exc)}"
        return record


def _check_signature(
    message: Any, idx: int, tags: dict[bytes, bytes], signing_domain: str, keys: _KeyLookup
) -> str | None:
    """None when signature `idx` is valid and covers what commands are read from; else why not."""
    who = f"signature d={signing_domain}"
    signed = {h.strip().lower() for h in re.split(rb":", tags.get(b"h", b""))}
    for header in SIGNED_HEADERS:
        if header not in signed:
            return f"{who} does not sign {header.decode().title()}"
    if b"l" in tags:
        try:
            policy = CanonicalizationPolicy.from_c_value(tags.get(b"c", b"simple/simple"))
            partial = int(tags[b"l"]) < len(policy.canonicalize_body(message.body))
        except Exception:  # noqa: BLE001 - a bad l= or c=: not a whole-body signature
            partial = True
        if partial:
            return f"{who} covers only part of the body (l=)"
    keys.reset()
    try:
        valid = message.verify(idx=idx, dnsfunc=keys)
    except Exception as exc:  # noqa: BLE001 - DKIMException, or worse on odd input
        return keys.detail or f"{who}: {_short(exc)}"
    if valid:
        return None
    return keys.detail or f"{who} does not verify"


def _mta_result(result: Any, from_domain: str, ident: str) -> bool | str | None:
    """True for a passing aligned dkim/dmarc result; else a reason, or None if irrelevant."""
    method = str(getattr(result, "method", "")).lower()
    outcome = str(getattr(result, "result", "")).lower()
    if method not in ("dkim", "dmarc"):
        return None
    if outcome != "pass":
        return f"{method}={outcome} from {ident}"
    if method == "dmarc":
        header_from = _domain(_prop(result, "from").rpartition("@")[2])
        if header_from == from_domain:
            return True
        return f"dmarc=pass for header.from={header_from or '?'}, not {from_domain}"
    signing = _domain(_prop(result, "d")) or _domain(_prop(result, "i").rpartition("@")[2])
    if signing and aligned(signing, from_domain):
        return True
    return f"dkim=pass header.d={signing or '?'} not aligned with {from_domain}"


def _describe(result: Any, ident: str) -> str:
    if result.method == "dmarc":
        return f"dmarc=pass header.from={_domain(_prop(result, 'from'))} by {ident}"
    tag = "d" if _prop(result, "d") else "i"
    return f"dkim=pass header.{tag}={_prop(result, tag)} aligned with From by {ident}"


def _prop(result: Any, name: str) -> str:
    """A header.NAME property of an authres result, '' when absent."""
    for prop in getattr(result, "properties", ()) or ():
        if prop.type == "header" and prop.name == name and prop.value:
            return str(prop.value)
    return ""


def _tags(value: bytes) -> dict[bytes, bytes] | None:
    try:
        tags = parse_tag_value(value)
    except Exception:  # noqa: BLE001 - InvalidTagValueList, or worse on odd input
        return None
    return tags if isinstance(tags, dict) else None


def _domain_tag(tags: dict[bytes, bytes]) -> str:
    try:
        return _domain(tags.get(b"d", b"").decode("ascii"))
    except UnicodeDecodeError:
        return ""


def _domain(domain: str) -> str:
    """Lower case, no trailing dot, IDNA A-labels where it converts."""
    domain = domain.strip().lower().rstrip(".")
    if domain and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return domain


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).strip()


def _short(exc: BaseException) -> str:
    """The first words of an exception's text: dkimpy appends base64 blobs in parentheses."""
    text = re.sub(r"\bb'([^']*)'", r"\1", str(exc).split(" (", 1)[0]).strip()
    return text[:80] if text else type(exc).__name__


class SenderAuths:
    """One SenderAuth per `sender_auth` mode, made when first asked for, all on one TXT lookup:
    a reload may change the mode, and the DNS cache survives it."""

    def __init__(self, dns_txt: TxtLookup | None = None):
        self._txt = dns_txt
        self._by_mode: dict[str, SenderAuth] = {}
        self._offline = False

    def offline(self) -> SenderAuths:
        """The same modes and caches, each answering only from its cache (SenderAuth.offline)."""
        view = copy.copy(self)  # shares _by_mode: a mode made by either is made for both
        view._offline = True
        return view

    def __call__(self, mode: str) -> SenderAuth:
        auth = self._by_mode.get(mode)
        if auth is None:
            auth = self._by_mode[mode] = SenderAuth(mode, dns_txt=self._txt)
        return auth.offline() if self._offline else auth
