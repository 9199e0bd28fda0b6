"""Apply the list's DMARC setting to a post before decoration (SPEC 6, issue 5)."""

from __future__ import annotations

import logging
from email.policy import SMTP

from listserv.addresses import list_address, sender_address
from listserv.config import ListConfig
from listserv.dmarc import DmarcPolicies, munge_from, needs_dmarc_action, wrap_message
from listserv.message import RawMessage, parse
from listserv.posting import Site

log = logging.getLogger("listserv.dmarc")

MUNGED = ("From", "Reply-To", "Cc", "X-Original-From")
# CRLF, and the original's own fields never refolded: the attached post stays byte-for-byte
# what its author sent, so its DKIM signature still verifies (even with c=simple).
WRAP_POLICY = SMTP.clone(refold_source="none")


def apply(raw: bytes, lst: ListConfig, site: Site, policies: DmarcPolicies | None) -> bytes:
    """The post, From-munged or wrapped when its author's domain asks for it; else unchanged."""
    if lst.dmarc == "none" or policies is None:
        return raw
    msg = RawMessage(raw)
    author = sender_address(msg.get("from"))
    if author is None:
        return raw
    policy = policies.policy(author.rpartition("@")[2])
    if not needs_dmarc_action(policy):
        return raw
    log.info("%s: %s publishes p=%s; applying dmarc = %s", lst.name, author, policy, lst.dmarc)
    address = list_address(lst.name, site.domain)
    full = parse(raw)
    if lst.dmarc == "wrap":
        wrapped = wrap_message(full, list_address=address, list_title=lst.display_title)
        return wrapped.as_bytes(policy=WRAP_POLICY)
    munge_from(full, list_address=address, list_title=lst.display_title, reply_to_mode=lst.reply_to)
    for name in MUNGED:  # copy the rewritten fields back, leaving the body byte-for-byte
        values = full.get_all(name) or []
        msg.remove(name)
        for value in values:
            msg.add(name, str(value))
    return msg.to_bytes()
