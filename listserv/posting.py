"""5. The ordered steps that turn an accepted post into the copy every member gets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.policy import SMTP

from sqlmodel import Session

from listserv.addresses import list_address, sender_address
from listserv.config import ListConfig, Site
from listserv.dmarc import DmarcPolicies, munge_from, needs_dmarc_action, wrap_message
from listserv.headers import list_fields
from listserv.message import RawMessage, parse
from listserv.states import Delivery
from listserv.store import outbound, posts
from listserv.store.tables import Post
from listserv.text import after_reply_marker

log = logging.getLogger("listserv.posting")

# Fields a list must not pass on: delivery traces and other lists' List-* fields (RFC 2369).
HYGIENE = (
    "return-path",
    "delivered-to",
    "x-original-to",
    "list-id",
    "list-post",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-archive",
    "list-owner",
    "precedence",
    "x-listserv-loop",
)
# Fields whose change breaks an author's DKIM signature.
SIGNED = ("subject", "from", "reply-to", "cc")
MUNGED = ("From", "Reply-To", "Cc", "X-Original-From")
# CRLF, and the original's own fields never refolded: the attached post stays byte-for-byte
# what its author sent, so its DKIM signature still verifies (even with c=simple).
WRAP_POLICY = SMTP.clone(refold_source="none")


@dataclass(frozen=True)
class Decoration:
    """What the steps know: the list, the server, and the DMARC lookups (None: no DNS)."""

    lst: ListConfig
    site: Site
    dmarc: DmarcPolicies | None = None


Step = Callable[[RawMessage, Decoration], RawMessage]


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
            rest = rest[len(tag) :].lstrip()
            continue
        after = after_reply_marker(rest)
        if after is not None:
            rest, is_reply = after.lstrip(), True
            continue
        break
    rest = rest or "(no subject)"
    if not tag:
        return f"Re: {rest}" if is_reply else rest
    return f"{tag} {'Re: ' if is_reply else ''}{rest}"


def bare_subject(subject: str, prefix: str) -> str:
    """A post's subject without the list prefix ('[x] Re: hi' -> 'Re: hi')."""
    tag = prefix.strip()
    text = prefixed_subject(subject, prefix)
    return text[len(tag) :].strip() if tag else text


def dmarc(msg: RawMessage, d: Decoration) -> RawMessage:
    """From-munge or wrap a post whose author's domain publishes p=reject or p=quarantine."""
    lst = d.lst
    if lst.dmarc == "none" or d.dmarc is None:
        return msg
    author = sender_address(msg.get("from"))
    if author is None:
        return msg
    policy = d.dmarc.policy(author.rpartition("@")[2])
    if not needs_dmarc_action(policy):
        return msg
    log.info("%s: %s publishes p=%s; applying dmarc = %s", lst.name, author, policy, lst.dmarc)
    address = list_address(lst.name, d.site.domain)
    full = parse(msg.to_bytes())
    if lst.dmarc == "wrap":
        wrapped = wrap_message(full, list_address=address, list_title=lst.display_title)
        return RawMessage(wrapped.as_bytes(policy=WRAP_POLICY))
    munge_from(full, list_address=address, list_title=lst.display_title, reply_to_mode=lst.reply_to)
    for name in MUNGED:  # copy the rewritten fields back, leaving the body byte-for-byte
        values = full.get_all(name) or []
        msg.remove(name)
        for value in values:
            msg.add(name, str(value))
    return msg


def strip_hygiene(msg: RawMessage, d: Decoration) -> RawMessage:
    msg.remove(*HYGIENE)
    return msg


def prefix_subject(msg: RawMessage, d: Decoration) -> RawMessage:
    if d.lst.prefix.strip():
        old = msg.get("subject")
        new = prefixed_subject(old, d.lst.prefix)
        if new != old:
            msg.set("Subject", new)
    return msg


def set_reply_to(msg: RawMessage, d: Decoration) -> RawMessage:
    if d.lst.reply_to == "list":
        msg.set("Reply-To", list_address(d.lst.name, d.site.domain))
    return msg


def add_list_headers(msg: RawMessage, d: Decoration) -> RawMessage:
    for name, value in list_fields(d.lst, d.site):
        msg.add(name, value)
    return msg


POSTING: tuple[Step, ...] = (dmarc, strip_hygiene, prefix_subject, set_reply_to, add_list_headers)


def decorate(
    raw: bytes,
    lst: ListConfig,
    site: Site,
    dmarc_policies: DmarcPolicies | None = None,
    steps: tuple[Step, ...] = POSTING,
) -> bytes:
    """The shared copy of a post: every step applied, the body untouched."""
    msg = RawMessage(raw)
    before = signed_fields(msg)
    d = Decoration(lst, site, dmarc_policies)
    for step in steps:
        msg = step(msg, d)
    if signed_fields(msg) != before:  # a signature over them no longer verifies
        msg.remove("DKIM-Signature")
    return msg.to_bytes()


def signed_fields(msg: RawMessage) -> list[bytes]:
    """The fields a signature must cover, as bytes: comparing them decoded cost a tenth of a
    post's dispatch (issue 12), and a field refolded breaks a simple-canonical signature."""
    return [data for name, data in msg.fields if name in SIGNED]


def distribute(
    s: Session,
    lst: ListConfig,
    site: Site,
    post: Post,
    now: datetime,
    dmarc_policies: DmarcPolicies | None = None,
) -> int:
    """Decorate the post once and queue a copy for every regular member; idempotent."""
    raw = decorate(post.raw, lst, site, dmarc_policies)
    out = outbound.add_outbound(s, lst.name, "post", raw, now, post_id=post.id)
    assert out.id is not None
    count = outbound.queue_to_members(s, out.id, lst.name, (Delivery.REGULAR,), now)
    posts.mark_distributed(s, post, now)
    return count
