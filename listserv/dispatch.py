"""3. Which address a message went to decides where it goes: post, command, owner or bounce."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from listserv import commands, retention
from listserv.addresses import split_recipient
from listserv.bounces import score as bounces
from listserv.config import Config, ListConfig, Site
from listserv.dmarc import DmarcPolicies
from listserv.headers import carries_list_id
from listserv.message import Incoming, RawMessage, message_ids, parse
from listserv.moderation import ACCEPT, HOLD, REJECT, STATUS, PostFacts, decide
from listserv.notices import may_auto_reply, notice, queue_message, reply
from listserv.posting import distribute
from listserv.states import LIVE, MemberStatus
from listserv.store import members, posts
from listserv.store.tables import Inbound, Post

log = logging.getLogger("listserv.dispatch")


@dataclass(frozen=True)
class Route:
    """Where one recipient's copy of a message goes."""

    list_name: str
    handler: str  # post | owner | bounce | command
    suffix: str
    detail: str


HANDLERS = {"": "post", "owner": "owner", "bounces": "bounce"}  # any other suffix: a command


def route(rcpt: str, domain: str, names: frozenset[str]) -> Route | None:
    """The route for a recipient; None when it is none of ours.

    >>> route("networking-leave+t0k@x.org", "x.org", frozenset({"networking"}))
    Route(list_name='networking', handler='command', suffix='leave', detail='t0k')
    """
    found = split_recipient(rcpt, domain, names)
    if found is None:
        return None
    name, suffix, detail = found
    return Route(name, HANDLERS.get(suffix, "command"), suffix, detail)


def handle_inbound(
    s: Session,
    cfg: Config,
    row: Inbound,
    now: datetime,
    dmarc_policies: DmarcPolicies | None = None,
    inc: Incoming | None = None,
) -> None:
    """Handle one stored message for each of its recipients, in the caller's transaction
    (inc: the message already parsed, so the transaction does no parsing)."""
    if inc is None:
        inc = Incoming(raw=row.raw, mail_from=row.mail_from, msg=RawMessage(row.raw), now=now)
    site = cfg.site
    names = frozenset(cfg.lists)
    # One pass per distinct recipient: a client repeating RCPT TO must not post twice.
    for rcpt in dict.fromkeys(r.lower() for r in json.loads(row.rcpts)):
        where = route(rcpt, cfg.server.domain, names)
        if where is None:
            log.warning("inbound %s: no route for %s (config changed?)", row.id, rcpt)
            continue
        lst = cfg.lists[where.list_name]
        members.ensure_list(s, lst.name, now)
        if where.handler == "post":
            handle_post(s, cfg, lst, site, inc, dmarc_policies)
        elif where.handler == "owner":
            forward_to_owners(s, lst, inc)
        elif where.handler == "bounce":
            bounces.handle_bounce(s, lst, site, inc.raw, where.detail, now)
        else:
            commands.handle_command_mail(s, cfg, lst, site, inc, where.suffix, where.detail)


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
        is_member=member is not None and member.status in LIVE,
        is_privileged=sender in lst.owners or sender in lst.moderators,
        our_list_id=carries_list_id(inc.msg, lst, site),
        duplicate=bool(sender)
        and posts.is_duplicate(s, lst.name, sender or "", inc.message_id, inc.now),
    )


def handle_post(
    s: Session,
    cfg: Config,
    lst: ListConfig,
    site: Site,
    inc: Incoming,
    dmarc_policies: DmarcPolicies | None = None,
) -> None:
    """A message to the list address: administrivia, moderation, then distribution."""
    subject, body = inc.subject, inc.text()
    sender = inc.sender
    if sender and retention.is_unsubscribe_request(subject, body):
        member = members.get_member(s, lst.name, sender)
        if member is not None and member.status in (*LIVE, MemberStatus.PENDING):
            log.info(
                "%s: unsubscribe request from %s posted to the list; handled privately",
                lst.name,
                sender,
            )
            commands.handle_command_mail(s, cfg, lst, site, inc, "leave", "")
            return
    facts = post_facts(s, lst, site, inc)
    action, reason = decide(facts, lst)
    message_id = inc.message_id[:500]
    parent = (message_ids(inc.msg.get("in-reply-to")) or [""])[0]
    thread = posts.thread_key_for(s, lst.name, parent, message_ids(inc.msg.get("references")))
    post = posts.add_post(
        s,
        Post(
            list_name=lst.name,
            message_id=message_id,
            sender=sender or "",
            from_header=inc.msg.get("from")[:500],
            subject=subject[:500],
            received_at=inc.now,
            raw=inc.raw,
            status=STATUS[action],
            reason=reason,
            topic=retention.classify_topic(subject, body),
            in_reply_to=parent,
            thread_key=thread or message_id,
        ),
    )
    log.info("%s: post %s from %s: %s (%s)", lst.name, post.id, sender, action, reason)
    if action == ACCEPT:
        distribute(s, lst, site, post, inc.now, dmarc_policies)
    elif action == HOLD:
        hold_notices(s, lst, site, post, inc, reason)
    elif action == REJECT and sender and may_auto_reply(inc.msg, inc.mail_from, lst, site):
        reply(s, lst, site, sender, "member/rejected.txt", inc.now, subject=subject, reason=reason)


def hold_notices(
    s: Session, lst: ListConfig, site: Site, post: Post, inc: Incoming, reason: str
) -> None:
    owners = sorted(set(lst.owners) | set(lst.moderators))
    notice(s, lst, site, owners, "admin/held.txt", inc.now, post=post, reason=reason)
    if post.sender and may_auto_reply(inc.msg, inc.mail_from, lst, site):
        reply(
            s,
            lst,
            site,
            post.sender,
            "member/held.txt",
            inc.now,
            subject=post.subject,
            reason=reason,
        )
