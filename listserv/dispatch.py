"""Which address a message went to decides where it goes: post, command, confirm, owner or bounce."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from listserv import bouncing, commands, retention
from listserv.addresses import sender_address, split_recipient
from listserv.config import Config, ListConfig
from listserv.message import RawMessage, first_text, message_ids, parse
from listserv.moderation import ACCEPT, DISCARD, HOLD, REJECT, PostFacts, decide
from listserv.notices import may_auto_reply, notice, queue_message, reply
from listserv.posting import Site, carries_list_id, decorate
from listserv.store import members, posts, queue
from listserv.store.tables import Inbound, Post

log = logging.getLogger("listserv.dispatch")


@dataclass
class Incoming:
    """One accepted message on its way: the raw bytes, the envelope and what we read from it."""

    raw: bytes
    mail_from: str
    msg: RawMessage
    now: datetime

    @property
    def sender(self) -> str | None:
        """The From address, else the envelope sender."""
        return sender_address(self.msg.get("from")) or sender_address(self.mail_from)


def handle_inbound(s: Session, cfg: Config, row: Inbound, now: datetime, resolver: object = None) -> None:
    """Handle one stored message for each of its recipients, in the caller's transaction."""
    inc = Incoming(raw=row.raw, mail_from=row.mail_from, msg=RawMessage(row.raw), now=now)
    site = Site.of(cfg.server)
    names = frozenset(cfg.lists)
    # One pass per distinct recipient: a client repeating RCPT TO must not post twice.
    for rcpt in dict.fromkeys(r.lower() for r in json.loads(row.rcpts)):
        route = split_recipient(rcpt, cfg.server.domain, names)
        if route is None:
            log.warning("inbound %s: no route for %s (config changed?)", row.id, rcpt)
            continue
        name, suffix, detail = route
        lst = cfg.lists[name]
        members.ensure_list(s, name, now)
        if suffix == "":
            handle_post(s, cfg, lst, site, inc, resolver)
        elif suffix == "owner":
            forward_to_owners(s, lst, inc)
        elif suffix == "bounces":
            bouncing.handle_bounce(s, lst, site, inc.raw, detail, now)
        else:
            commands.handle_command_mail(s, cfg, lst, site, inc, suffix, detail)


def forward_to_owners(s: Session, lst: ListConfig, inc: Incoming) -> None:
    """Mail to NAME-owner@ goes to the owners unchanged."""
    if not lst.owners:
        log.warning("%s-owner: no owners configured; message dropped", lst.name)
        return
    queue_message(s, lst.name, parse(inc.raw), lst.owners, inc.now, kind="owner")


def post_facts(s: Session, lst: ListConfig, site: Site, inc: Incoming) -> PostFacts:
    sender = inc.sender
    member = members.get_member(s, lst.name, sender) if sender else None
    return PostFacts(
        sender=sender,
        is_member=member is not None and member.status in ("active", "disabled"),
        is_privileged=sender in lst.owners or sender in lst.moderators,
        our_list_id=carries_list_id(inc.msg, lst, site),
        duplicate=bool(sender) and posts.is_duplicate(s, lst.name, sender or "",
                                                       inc.msg.get("message-id").strip(), inc.now),
    )


def handle_post(s: Session, cfg: Config, lst: ListConfig, site: Site, inc: Incoming,
                resolver: object = None) -> None:
    """A message to the list address: administrivia, moderation, then distribution."""
    subject, body = inc.msg.get("subject"), first_text(parse(inc.raw))
    sender = inc.sender
    if sender and retention.is_unsubscribe_request(subject, body):
        member = members.get_member(s, lst.name, sender)
        if member is not None and member.status in ("active", "disabled", "pending"):
            log.info("%s: unsubscribe request from %s posted to the list; handled privately",
                     lst.name, sender)
            commands.handle_command_mail(s, cfg, lst, site, inc, "leave", "")
            return
    facts = post_facts(s, lst, site, inc)
    action, reason = decide(facts, lst)
    message_id = inc.msg.get("message-id").strip()[:500]
    parent = (message_ids(inc.msg.get("in-reply-to")) or [""])[0]
    thread = posts.thread_key_for(s, lst.name, parent, message_ids(inc.msg.get("references")))
    post = posts.add_post(s, Post(
        list_name=lst.name, message_id=message_id, sender=sender or "",
        from_header=inc.msg.get("from")[:500], subject=subject[:500], received_at=inc.now,
        raw=inc.raw, status={ACCEPT: "accepted", HOLD: "held", REJECT: "rejected",
                             DISCARD: "discarded"}[action],
        reason=reason, topic=retention.classify_topic(subject, body),
        in_reply_to=parent, thread_key=thread or message_id))
    log.info("%s: post %s from %s: %s (%s)", lst.name, post.id, sender, action, reason)
    if action == ACCEPT:
        distribute(s, lst, site, post, inc.now, resolver)
    elif action == HOLD:
        hold_notices(s, lst, site, post, inc, reason)
    elif action == REJECT and sender and may_auto_reply(inc.msg, inc.mail_from, lst, site):
        reply(s, lst, site, sender, "member/rejected.txt", inc.now, subject=subject, reason=reason)


def hold_notices(s: Session, lst: ListConfig, site: Site, post: Post, inc: Incoming, reason: str) -> None:
    owners = sorted(set(lst.owners) | set(lst.moderators))
    notice(s, lst, site, owners, "admin/held.txt", inc.now, post=post, reason=reason)
    if post.sender and may_auto_reply(inc.msg, inc.mail_from, lst, site):
        reply(s, lst, site, post.sender, "member/held.txt", inc.now, subject=post.subject, reason=reason)


def distribute(s: Session, lst: ListConfig, site: Site, post: Post, now: datetime,
               resolver: object = None) -> int:
    """Decorate the post once and queue a copy for every regular member; idempotent."""
    from listserv import dmarc_step  # local: the DMARC step needs DNS only for posts

    raw = dmarc_step.apply(post.raw, lst, site, resolver)
    out = queue.add_outbound(s, lst.name, "post", decorate(raw, lst, site), now, post_id=post.id)
    assert out.id is not None
    count = queue.queue_to_members(s, out.id, lst.name, ("regular",), now)
    post.status = "accepted"
    post.distributed_at = now
    s.add(post)
    return count

