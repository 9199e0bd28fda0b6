"""Pure address helpers: normalise, split list recipients, VERP encode and decode."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr

# Address suffixes a list answers to, beside the bare list name (SPEC section 3).
SUFFIXES = (
    "request",
    "join",
    "subscribe",
    "leave",
    "unsubscribe",
    "confirm",
    "owner",
    "bounces",
    "alumni",
    "announce",
)
# Suffixes that may carry a "+detail" part.
TOKENED = {"leave", "confirm", "bounces", "alumni", "announce"}
# Suffixes that exist only with a member's token: NAME-alumni+TOKEN@, NAME-announce+TOKEN@.
TOKEN_ONLY = {"alumni", "announce"}

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def is_valid_address(addr: str) -> bool:
    """True for a plain addr-spec like 'a.b@example.org'.

    >>> is_valid_address("owner@example.org"), is_valid_address("not an address")
    (True, False)
    """
    if not isinstance(addr, str) or "\r" in addr or "\n" in addr:
        return False
    local, sep, domain = addr.strip().rpartition("@")
    if not sep or not local or len(local) > 64:
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return bool(_LOCAL.match(local)) and bool(_DOMAIN.match(domain))


def normalise(addr: str) -> str:
    """The canonical form stored for an address: trimmed, angle brackets gone, lower case.

    >>> normalise(" <Ann.Smith@Example.ORG> ")
    'ann.smith@example.org'
    """
    return addr.strip().strip("<>").strip().lower()


def sender_address(header_value: str | None) -> str | None:
    """The addr-spec of a From header value, normalised; None when there is none."""
    if not header_value:
        return None
    pairs = getaddresses([str(header_value)])
    for _name, addr in pairs:
        if addr and is_valid_address(addr):
            return normalise(addr)
    _name, addr = parseaddr(str(header_value))
    return normalise(addr) if addr and is_valid_address(addr) else None


def split_recipient(
    recipient: str, domain: str, lists: set[str] | frozenset[str]
) -> tuple[str, str, str] | None:
    """Map a recipient to (list, suffix, detail); None when it is none of ours.

    suffix is '' for the list address itself.

    >>> split_recipient("Dev-Leave+abc@x.org", "x.org", {"dev"})
    ('dev', 'leave', 'abc')
    >>> split_recipient("dev@x.org", "x.org", {"dev"})
    ('dev', '', '')
    >>> split_recipient("nobody@x.org", "x.org", {"dev"}) is None
    True
    """
    local, sep, host = normalise(recipient).rpartition("@")
    if not sep or host != domain.lower():
        return None
    if local in lists:
        return local, "", ""
    base, plus, detail = local.partition("+")
    for name in lists:
        for suffix in SUFFIXES:
            if base == f"{name}-{suffix}":
                if plus and suffix not in TOKENED:
                    return None
                if suffix in TOKEN_ONLY and not detail:
                    return None
                return name, suffix, detail
    return None


def is_postmaster(recipient: str, domain: str) -> bool:
    """postmaster@domain, or a bare 'postmaster' (RFC 5321 4.5.1: both must be accepted).

    >>> is_postmaster("PostMaster@X.org", "x.org"), is_postmaster("postmaster@y.org", "x.org")
    (True, False)
    """
    local, sep, host = normalise(recipient).rpartition("@")
    if not sep:
        return host == "postmaster"
    return local == "postmaster" and host == domain.lower()


def verp_encode(list_name: str, domain: str, member: str) -> str:
    """The VERP envelope sender for a copy to member.

    >>> verp_encode("dev", "lists.x.org", "ann@example.com")
    'dev-bounces+ann=example.com@lists.x.org'
    """
    local, _, host = member.rpartition("@")
    return f"{list_name}-bounces+{local}={host}@{domain}"


def verp_decode(detail: str) -> str | None:
    """The member address inside a VERP detail ('ann=example.com' -> 'ann@example.com').

    The last '=' separates local part and domain, since a local part may hold '=' itself.

    >>> verp_decode("ann=example.com")
    'ann@example.com'
    >>> verp_decode("nothing") is None
    True
    """
    local, sep, host = detail.rpartition("=")
    if not sep or not local or not host:
        return None
    addr = f"{local}@{host}"
    return normalise(addr) if is_valid_address(addr) else None


def list_address(list_name: str, domain: str, suffix: str = "", detail: str = "") -> str:
    """One of a list's own addresses, e.g. ('dev', 'x.org', 'confirm', 'T') -> dev-confirm+T@x.org."""
    local = list_name if not suffix else f"{list_name}-{suffix}"
    if detail:
        local = f"{local}+{detail}"
    return f"{local}@{domain}"


def display(name: str, addr: str) -> str:
    """A header-ready 'Name <addr>' built by the email package."""
    local, _, domain = addr.rpartition("@")
    return str(Address(display_name=name, username=local, domain=domain))
