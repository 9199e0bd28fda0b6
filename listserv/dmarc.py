"""DMARC: look up a sender domain's policy (cached) and rewrite or wrap posts from strict domains.

A list that re-sends Ann's post with her own From breaks DKIM/SPF alignment, so
receivers obeying p=reject (or quarantine) at her domain bounce it. The cure is
to send it From the list (munge_from) or to attach the original (wrap_message).
The lookup is `_dmarc.DOMAIN`, then the organisational domain's `sp=` (else `p=`)
as RFC 7489 section 6.6.3 says; the organisational domain comes from a small
built-in table of two-label public suffixes, not the full Public Suffix List.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage

import dns.exception
import dns.resolver

from listserv.message import readable

log = logging.getLogger("listserv.dmarc")

Resolver = Callable[[str], tuple[list[str], int]]
POLICIES = ("none", "quarantine", "reject")
MIN_TTL, MAX_TTL = 60.0, 86400.0
NEGATIVE_TTL = 300.0  # NXDOMAIN, no TXT, or no DMARC record among them
FAILURE_TTL = 60.0  # timeouts and SERVFAIL: retry soon

# Second-level labels under which registrations sit one level deeper (example.co.uk).
PUBLIC_SUFFIXES = frozenset(
    f"{second}.{tld}"
    for tld, seconds in {
        "uk": "co org ac gov me ltd plc net sch nhs police",
        "au": "com net org edu gov asn id",
        "jp": "co ne or ac go ad ed gr lg",
        "br": "com net org gov edu",
        "nz": "co org net ac govt school",
        "za": "co org gov ac net",
        "in": "co net org ac gov",
        "kr": "co or ac go ne",
        "il": "co org ac gov",
        "cn": "com net org gov edu",
        "hk": "com org net edu gov",
        "tw": "com org net edu gov",
        "sg": "com org net edu gov",
        "my": "com org net edu gov",
        "id": "co or ac go",
        "th": "co or ac go in",
        "mx": "com org gob edu net",
        "ar": "com org gob edu net",
        "tr": "com org net edu gov",
        "ph": "com org net edu gov",
        "pk": "com org net edu gov",
        "ng": "com org net edu gov",
        "ke": "co or ac go",
        "eg": "com org net edu gov",
        "sa": "com org net edu gov",
        "ua": "com org net edu gov",
        "pl": "com org net edu gov",
        "vn": "com org net edu gov",
        "co": "com org net edu gov",
        "pe": "com org net edu gob",
        "es": "com org nom edu gob",
        "at": "co or ac gv",
    }.items()
    for second in seconds.split()
)


@dataclass(frozen=True)
class _Record:
    p: str
    sp: str | None


def organisational_domain(domain: str) -> str:
    """The registered domain by a simple heuristic.

    >>> organisational_domain("lists.mail.example.co.uk"), organisational_domain("a.b.example.org")
    ('example.co.uk', 'example.org')
    """
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in PUBLIC_SUFFIXES else 2
    return ".".join(labels[-keep:])


def parse_record(txt: str) -> _Record | None:
    """The p/sp of a 'v=DMARC1; p=...' TXT string; None when it is not a DMARC record.

    >>> parse_record(" V=dmarc1 ;P=Reject; sp = none")
    _Record(p='reject', sp='none')
    """
    tags: dict[str, str] = {}
    for i, item in enumerate(txt.split(";")):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if i == 0 and (key != "v" or value != "dmarc1"):
            return None
        if sep and key not in tags:
            tags[key] = value
    # RFC 7489 6.6.3: a missing or unknown p= means p=none (with or without rua).
    p, sp = tags.get("p", ""), tags.get("sp", "")
    return _Record(p=p if p in POLICIES else "none", sp=sp if sp in POLICIES else None)


class DmarcPolicies:
    """Cached DMARC policy lookups; the resolver and the clock are injectable for tests."""

    def __init__(self, resolver: Resolver | None = None, now: Callable[[], float] = time.monotonic):
        self._resolver = resolver
        self._now = now
        self._cache: dict[str, tuple[float, _Record | None]] = {}

    def policy(self, domain: str) -> str:
        """'reject', 'quarantine' or 'none' (also when the domain publishes nothing)."""
        domain = domain.strip().lower().rstrip(".")
        if not domain:
            return "none"
        record = self._record(domain)
        if record is not None:
            return record.p
        org = organisational_domain(domain)
        if org != domain:
            record = self._record(org)
            if record is not None:
                return record.sp or record.p
        return "none"

    def _record(self, domain: str) -> _Record | None:
        name = f"_dmarc.{domain}"
        cached = self._cache.get(name)
        if cached is not None and cached[0] > self._now():
            return cached[1]
        record, ttl = self._fetch(name)
        self._cache[name] = (self._now() + ttl, record)
        return record

    def _fetch(self, name: str) -> tuple[_Record | None, float]:
        if self._resolver is None:
            self._resolver = default_resolver()
        try:
            strings, ttl = self._resolver(name)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None, NEGATIVE_TTL
        except dns.exception.DNSException as exc:  # timeout, SERVFAIL, no nameservers
            log.warning("DMARC lookup of %s failed (%s); treating it as no policy", name, exc)
            return None, FAILURE_TTL
        records = [r for r in (parse_record(s) for s in strings) if r is not None]
        if len(records) != 1:  # RFC 7489 6.6.3: none, or more than one, means no policy
            return None, NEGATIVE_TTL
        return records[0], min(max(float(ttl), MIN_TTL), MAX_TTL)


def default_resolver(lifetime: float = 2.0) -> Resolver:
    """A dnspython TXT resolver returning (record strings, TTL); each record's strings joined."""
    resolver = dns.resolver.Resolver()
    resolver.lifetime = lifetime

    def resolve_txt(name: str) -> tuple[list[str], int]:
        answer = resolver.resolve(name, "TXT")
        texts = [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]
        return texts, answer.rrset.ttl if answer.rrset is not None else int(MIN_TTL)

    return resolve_txt


def needs_dmarc_action(policy: str) -> bool:
    """True when a post from a domain with this policy must be munged or wrapped."""
    return policy in ("reject", "quarantine")


def munge_from(
    msg: EmailMessage, *, list_address: str, list_title: str, reply_to_mode: str
) -> None:
    """Send the post From the list, keeping the author reachable.

    From becomes "Name via Title" <list_address>. The author goes to Reply-To
    (reply_to_mode 'sender', replacing any) or is added to Cc (mode 'list', so a
    reply to the list also reaches them). X-Original-From keeps the original
    header, for readers' filters and for owners. A message without a usable
    From is left alone: it has no domain whose policy could apply.
    """
    if reply_to_mode not in ("sender", "list"):
        raise ValueError(f"reply_to_mode = {reply_to_mode!r} is not 'sender' or 'list'")
    author = _author(msg)
    if author is None:
        return
    original = readable(str(msg["From"]))
    del msg["X-Original-From"]
    msg["X-Original-From"] = original
    msg.replace_header("From", _via(author, list_address, list_title))
    if reply_to_mode == "sender":
        del msg["Reply-To"]
        msg["Reply-To"] = author
    else:
        cc = [a for header in msg.get_all("Cc", []) for a in getattr(header, "addresses", ())]
        if author.addr_spec.lower() not in {a.addr_spec.lower() for a in cc}:
            del msg["Cc"]
            msg["Cc"] = [*cc, author]


def wrap_message(msg: EmailMessage, *, list_address: str, list_title: str) -> EmailMessage:
    """A new message From the list that carries the untouched original as message/rfc822."""
    author = _author(msg)
    name = _name(author) if author else "a member"
    outer = EmailMessage()
    outer["From"] = _via(author, list_address, list_title) if author else list_address
    if author:
        outer["Reply-To"] = author
    for header in ("To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References"):
        if msg[header] is not None:
            outer[header] = readable(str(msg[header]))
    outer.set_content(
        f"A message from {name} follows; it is attached because their domain "
        "asks that it is not forwarded unchanged.\n"
    )
    outer.add_attachment(msg)
    return outer


def _author(msg: EmailMessage) -> Address | None:
    header = msg["From"]
    for addr in getattr(header, "addresses", ()):
        if addr.username and addr.domain:
            return Address(readable(addr.display_name), readable(addr.username), addr.domain)
    return None


def _name(author: Address) -> str:
    return author.display_name or author.addr_spec


def _via(author: Address, list_address: str, list_title: str) -> Address:
    return Address(display_name=f"{_name(author)} via {list_title}", addr_spec=list_address)
