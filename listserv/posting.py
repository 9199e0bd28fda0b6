"""The ordered steps that turn an accepted post into the copy every member gets."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formataddr

from listserv.addresses import list_address
from listserv.config import ListConfig, ServerConfig
from listserv.message import RawMessage, fold, fold_uris

# Fields a list must not pass on: delivery traces and other lists' List-* fields (RFC 2369).
HYGIENE = ("return-path", "delivered-to", "x-original-to", "list-id", "list-post", "list-help",
           "list-subscribe", "list-unsubscribe", "list-unsubscribe-post", "list-archive",
           "list-owner", "precedence", "x-listserv-loop")
# Fields whose change breaks an author's DKIM signature.
SIGNED = ("subject", "from", "reply-to", "cc")

# Reply markers only: unlike message.strip_markers, a "Fwd:" stays in the subject of a post.
_REPLY_MARKER = re.compile(r"^(re|aw|sv|antw|vs|ref|rif|odp)\s*(\[\d+\]|\(\d+\))?\s*:\s*", re.I)


def prefixed_subject(subject: str, prefix: str) -> str:
    """Add the list prefix once, keeping one 'Re:' after it; never stack them.

    >>> prefixed_subject("Re: [dev] Re: [dev] hello", "[dev] ")
    '[dev] Re: hello'
    >>> prefixed_subject("hello", "[dev] ")
    '[dev] hello'
    """
    tag = prefix.strip()
    rest, is_reply = " ".join(subject.split()), False
    while True:
        if tag and rest.lower().startswith(tag.lower()):
            rest = rest[len(tag):].lstrip()
            continue
        m = _REPLY_MARKER.match(rest)
        if m:
            rest, is_reply = rest[m.end():].lstrip(), True
            continue
        break
    rest = rest or "(no subject)"
    if not tag:
        return f"Re: {rest}" if is_reply else rest
    return f"{tag} {'Re: ' if is_reply else ''}{rest}"


@dataclass(frozen=True)
class Site:
    """What decoration needs to know about the server."""

    domain: str
    base_url: str

    @classmethod
    def of(cls, server: ServerConfig) -> Site:
        return cls(domain=server.domain, base_url=server.base_url.rstrip("/"))


def list_id(lst: ListConfig, domain: str) -> str:
    """RFC 2919 List-Id value: 'Title <name.domain>'."""
    return formataddr((lst.display_title, f"{lst.name}.{domain}"))


def carries_list_id(msg: RawMessage, lst: ListConfig, site: Site) -> bool:
    """True when the message already went through this list (our List-Id): a loop."""
    own = f"<{lst.name}.{site.domain}>"
    return any(own in value.lower() for value in msg.get_all("list-id"))


def strip_hygiene(msg: RawMessage, lst: ListConfig, site: Site) -> None:
    msg.remove(*HYGIENE)


def prefix_subject(msg: RawMessage, lst: ListConfig, site: Site) -> None:
    if not lst.prefix.strip():
        return
    old = msg.get("subject")
    new = prefixed_subject(old, lst.prefix)
    if new != old:
        msg.set("Subject", new)


def set_reply_to(msg: RawMessage, lst: ListConfig, site: Site) -> None:
    if lst.reply_to == "list":
        msg.set("Reply-To", list_address(lst.name, site.domain))


def add_list_headers(msg: RawMessage, lst: ListConfig, site: Site) -> None:
    """RFC 2369 / 2919 fields shared by every copy (List-Unsubscribe is per member)."""
    for name, value in list_fields(lst, site):
        msg.add(name, value)


def list_fields(lst: ListConfig, site: Site) -> list[tuple[str, str]]:
    fields = [
        ("List-Id", list_id(lst, site.domain)),
        ("List-Post", f"<mailto:{list_address(lst.name, site.domain)}>"),
        ("List-Help", f"<mailto:{list_address(lst.name, site.domain, 'request')}?subject=help>"),
        ("List-Subscribe", f"<mailto:{list_address(lst.name, site.domain, 'join')}>"),
        ("List-Owner", f"<mailto:{list_address(lst.name, site.domain, 'owner')}>"),
    ]
    if lst.archive_url:
        fields.append(("List-Archive", f"<{lst.archive_url}>"))
    fields.append(("Precedence", "list"))
    return fields


Step = Callable[[RawMessage, ListConfig, Site], None]
POSTING: tuple[Step, ...] = (strip_hygiene, prefix_subject, set_reply_to, add_list_headers)


def decorate(raw: bytes, lst: ListConfig, site: Site, steps: tuple[Step, ...] = POSTING) -> bytes:
    """The shared copy of a post: every step applied, the body untouched."""
    msg = RawMessage(raw)
    before = {name: msg.get_all(name) for name in SIGNED}
    for step in steps:
        step(msg, lst, site)
    if any(msg.get_all(name) != old for name, old in before.items()):
        msg.remove("DKIM-Signature")
    return msg.to_bytes()


ONE_CLICK = fold("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")  # the same on every copy


def member_fields(lst_name: str, site: Site, token: str) -> bytes:
    """The per-member List-Unsubscribe fields (RFC 2369 + RFC 8058 one-click), folded."""
    url = f"{site.base_url}/u/{token}"
    mailto = list_address(lst_name, site.domain, "leave", token)
    unsubscribe = fold_uris("List-Unsubscribe", f"<{url}>, <mailto:{mailto}>")
    return unsubscribe + ONE_CLICK
