"""The list's own header fields: List-Id, the RFC 2369 List-* set and per-member unsubscribe."""

from __future__ import annotations

import functools
import re
from email.utils import formataddr

from listserv.addresses import list_address
from listserv.config import ListConfig, Site
from listserv.message import RawMessage, fold, fold_uris


def list_id(lst: ListConfig, domain: str) -> str:
    """RFC 2919 List-Id value: 'Title <name.domain>'."""
    return formataddr((lst.display_title, f"{lst.name}.{domain}"))


def carries_list_id(msg: RawMessage, lst: ListConfig, site: Site) -> bool:
    """True when the message already went through this list (our List-Id): a loop."""
    own = f"<{lst.name}.{site.domain}>"
    return any(own in value.lower() for value in msg.get_all("list-id"))


LOOP_MARKER = "X-BeenThere"  # as Mailman and Sympa write it; other lists' markers are kept


def carries_loop_marker(msg: RawMessage, lst: ListConfig, site: Site) -> bool:
    """True when the message already went out through this list (our X-BeenThere): a loop.

    List-Id alone is not enough: a list that forwards to us replaces it with its own.
    """
    own = list_address(lst.name, site.domain)
    return any(own in value.strip().lower() for value in msg.get_all(LOOP_MARKER))


def list_fields(lst: ListConfig, site: Site) -> list[tuple[str, str]]:
    """RFC 2369 / 2919 fields shared by every copy (List-Unsubscribe is per member), and the
    list's loop marker (SPEC 6)."""
    fields = [
        (LOOP_MARKER, list_address(lst.name, site.domain)),
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


ONE_CLICK = fold("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")  # the same on every copy


def member_fields(lst_name: str, site: Site, token: str) -> bytes:
    """The per-member List-Unsubscribe fields (RFC 2369 + RFC 8058 one-click), folded.

    Built on every copy, so the email package folds them once per list and token length, and
    a plain token (letters, digits, '-', '_': what listserv makes) goes into the folded bytes;
    folding them anew was a sixth of delivery's CPU per copy (issue 12).

    >>> site = Site("lists.example.org", "https://lists.example.org")
    >>> member_fields("jobs", site, "ab12") == _fold_member_fields("jobs", site, "ab12")
    True
    """
    if _PLAIN_TOKEN.fullmatch(token):
        around = _member_fields_around(lst_name, site, len(token))
        if around is not None:
            return token.encode().join(around)
    return _fold_member_fields(lst_name, site, token)


_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")


def _fold_member_fields(lst_name: str, site: Site, token: str) -> bytes:
    url = site.url("u", token)
    mailto = list_address(lst_name, site.domain, "leave", token)
    unsubscribe = fold_uris("List-Unsubscribe", f"<{url}>, <mailto:{mailto}>")
    return unsubscribe + ONE_CLICK


@functools.lru_cache(maxsize=256)
def _member_fields_around(lst_name: str, site: Site, length: int) -> tuple[bytes, ...] | None:
    """The folded fields split where a token of this length goes (twice); None when a
    stand-in token does not come out exactly twice, unchanged (never, for sane names)."""
    stand_in = "Q" * length
    parts = _fold_member_fields(lst_name, site, stand_in).split(stand_in.encode())
    return tuple(parts) if len(parts) == 3 else None
