"""3. Which address a message went to decides where it goes: post, command, owner or bounce."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlmodel import Session

from listserv import commands, membership, retention
from listserv.addresses import display, is_postmaster, split_recipient
from listserv.bounces import score as bounces
from listserv.config import Config, ListConfig, Site
from listserv.dmarc import DmarcPolicies
from listserv.errors import TokenError
from listserv.fields import join_tags, tag_fields
from listserv.headers import carries_list_id, carries_loop_marker
from listserv.message import Incoming, RawMessage, message_ids, parse
from listserv.moderation import ACCEPT, HOLD, REJECT, STATUS, PostFacts, decide, is_loop
from listserv.notices import may_auto_reply, notice, queue_message, reply
from listserv.posting import bare_subject, distribute
from listserv.sender_auth import SenderAuth, SenderAuths
from listserv.states import LIVE, MemberStatus
from listserv.store import members, posts
from listserv.store.tables import Inbound, Post
from listserv.text import strip_markers

log = logging.getLogger("listserv.dispatch")


@dataclass(frozen=True)
class Route:
    """Where one recipient's copy of a message goes."""

    list_name: str
    handler: str  # post | owner | bounce | command
    suffix: str
    detail: str


HANDLERS = {
    "": "post",
    "owner": "owner",
    "bounces": "bounce",
    "announce": "announce",
}  # any other suffix: a command


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
    sender_auth: SenderAuths | None = None,
    inc: Incoming | None = None,
) -> list[str]:
    """Handle one stored message for each of its recipients, in the caller's transaction
    (inc: the message already parsed, so the transaction does no parsing); returns what
    happened, one short phrase per recipient, for the worker's log line."""
    auth = (sender_auth or SenderAuths())(cfg.server.sender_auth)
    done: list[str] = []
    if inc is None:
        inc = Incoming(raw=row.raw, mail_from=row.mail_from, msg=RawMessage(row.raw), now=now)
    site = cfg.site
    names = frozenset(cfg.lists)
    # One pass per distinct recipient: a client repeating RCPT TO must not post twice.
    for rcpt in dict.fromkeys(r.lower() for r in json.loads(row.rcpts)):
        if is_postmaster(rcpt, cfg.server.domain):
            forward_to_postmaster(s, cfg, inc)
            continue
        where = route(rcpt, cfg.server.domain, names)
        if where is None:
            log.warning("inbound %s: no route for %s (config changed?)", row.id, rcpt)
            done.append(f"{rcpt}: no route")
            continue
        lst = cfg.lists[where.list_name]
        members.note_list(s, lst.name, now)
        if where.handler == "post":
            what = handle_post(s, cfg, lst, site, inc, dmarc_policies, auth)
        elif where.handler == "owner":
            what = forward_to_owners(s, lst, inc)
        elif where.handler == "bounce":
            bounces.handle_bounce(s, lst, site, inc.raw, where.detail, now)
            what = "bounce report read"
        elif where.handler == "announce":
            handle_announcement(s, cfg, lst, site, inc, where.detail, dmarc_policies)
            what = "announcement handled"
        else:
            commands.handle_command_mail(s, cfg, lst, site, inc, where.suffix, where.detail, auth)
            what = f"{where.suffix} mail handled"
        done.append(f"{rcpt}: {what}")
    return done


def read_ahead(cfg: Config, inc: Incoming, rcpts: list[str]) -> None:
    """Classify a post for each list it is posted to before the write transaction, so the
    store's writer does not wait on regular expressions (issue 12)."""
    names = frozenset(cfg.lists)
    for rcpt in rcpts:
        where = route(rcpt, cfg.server.domain, names)
        if where is not None and where.handler == "post":
            post_topic(inc)
            post_tags(inc, cfg.lists[where.list_name])


def post_topic(inc: Incoming) -> str | None:
    """The post's topic (hiring, layoff or None), classified once."""
    if "topic" not in inc.memo:
        inc.memo["topic"] = retention.classify_topic(inc.subject, inc.text())
    return cast(str | None, inc.memo["topic"])


def post_tags(inc: Incoming, lst: ListConfig) -> str:
    """The fields the post names in this list's field table, as stored; found once."""
    key = f"tags:{lst.name}"
    if key not in inc.memo:
        inc.memo[key] = join_tags(tag_fields(inc.subject, inc.text(), lst.field_table))
    return cast(str, inc.memo[key])


def forward_to_owners(s: Session, lst: ListConfig, inc: Incoming) -> str:
    """Mail to NAME-owner@ goes to the owners unchanged."""
    if not lst.owners:
        log.warning("%s-owner: no owners configured; message dropped", lst.name)
        return "dropped (no owners configured)"
    queue_message(s, lst.name, parse(inc.raw), lst.owners, inc.now, kind="owner")
    return f"forwarded to {len(lst.owners)} owner(s)"


# Headers and Subject starts an auto-responder leaves when it sets no Auto-Submitted (RFC 3834).
AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort|svar)|auto|out of (the )?office"
    r"|abwesenheitsnotiz|r[ée]ponse automatique|vacation( reply)?)\s*:",
    re.I,
)


def auto_reply(msg: RawMessage) -> bool:
    r"""The marks of an auto-responder that does not say Auto-Submitted.

    >>> auto_reply(RawMessage(b"Subject: Out of Office: [networking] hello\r\n\r\n"))
    True
    """
    if any(msg.has(name) for name in AUTO_REPLY_HEADERS):
        return True
    if msg.get("precedence").strip().lower() == "auto_reply":
        return True
    return bool(AUTO_REPLY_SUBJECT.match(msg.get("subject")))


def forward_to_postmaster(s: Session, cfg: Config, inc: Incoming) -> None:
    """Mail to postmaster@ goes to [server] postmaster, else to the owners of every list."""
    to = cfg.server.postmaster or tuple(
        sorted({o for lst in cfg.lists.values() for o in lst.owners})
    )
    if not to or not cfg.lists:
        log.warning("postmaster@: nobody to forward to (set [server] postmaster); dropped")
        return
    queue_message(s, min(cfg.lists), parse(inc.raw), to, inc.now, kind="owner")


def post_facts(s: Session, lst: ListConfig, site: Site, inc: Incoming) -> PostFacts:
    sender = inc.sender
    status = members.member_status(s, lst.name, sender) if sender else None
    parent = (message_ids(inc.msg.get("in-reply-to")) or [""])[0]
    auto = inc.msg.get("auto-submitted").strip().lower()
    return PostFacts(
        sender=sender,
        is_member=status in LIVE,
        is_privileged=sender in lst.owners or sender in lst.moderators,
        our_list_id=carries_list_id(inc.msg, lst, site),
        duplicate=bool(sender)
        and posts.is_duplicate(s, lst.name, sender or "", inc.message_id, inc.now),
        our_marker=carries_loop_marker(inc.msg, lst, site),
        received=sum(1 for name, _ in inc.msg.fields if name == "received"),
        auto_submitted=bool(auto) and auto != "no",
        auto_reply=auto_reply(inc.msg),
        own_reply_depth=posts.own_reply_depth(
            s, lst.name, sender or "", parent, inc.now - timedelta(hours=1)
        )
        if sender
        else 0,
    )


def handle_post(
    s: Session,
    cfg: Config,
    lst: ListConfig,
    site: Site,
    inc: Incoming,
    dmarc_policies: DmarcPolicies | None = None,
    auth: SenderAuth | None = None,
) -> str:
    """A message to the list address: administrivia, moderation, then distribution."""
    subject, body = inc.subject, inc.text()
    sender = inc.sender
    if sender and retention.is_unsubscribe_request(subject, body):
        member = members.get_member(s, lst.name, sender)
        if member is not None and member.status in (*LIVE, MemberStatus.PENDING):
            commands.handle_command_mail(s, cfg, lst, site, inc, "leave", "", auth)
            return "an unsubscribe request; handled privately as a leave"
    facts = post_facts(s, lst, site, inc)
    action, reason = decide(facts, lst)
    # Before the first write: DKIM may wait on DNS, and must not hold the store's write lock.
    looping = is_loop(facts, lst)
    quote = action in (HOLD, REJECT) and not looping
    shown = quotable_subject(inc, auth, subject) if quote else ""
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
            topic=post_topic(inc),
            fields=post_tags(inc, lst),
            in_reply_to=parent,
            thread_key=thread or message_id,
        ),
    )
    what = f"post {post.id} {STATUS[action]}" + (f" ({reason})" if reason else "")
    if action == ACCEPT:
        copies = distribute(s, lst, site, post, inc.now, dmarc_policies)
        what += f", {copies} {'copy' if copies == 1 else 'copies'} queued"
    elif action == HOLD:
        hold_notices(s, lst, site, post, inc, reason, not looping, shown)
    elif action == REJECT and sender and may_auto_reply(inc.msg, inc.mail_from, lst, site):
        reply(s, lst, site, sender, "member/rejected.txt", inc.now, subject=shown, reason=reason)
    return what


BACK_SUBJECT = "Back on the market"


def back_subject(subject: str, prefix: str) -> str:
    """'Back on the market: <their subject>', once.

    >>> back_subject("[networking] Re: Nurse, 10 years ICU", "[networking] ")
    'Back on the market: Nurse, 10 years ICU'
    """
    own = strip_markers(bare_subject(subject, prefix)).strip()
    if own.lower().startswith(BACK_SUBJECT.lower()):
        return own
    return f"{BACK_SUBJECT}: {own}" if own else BACK_SUBJECT


def handle_announcement(
    s: Session,
    cfg: Config,
    lst: ListConfig,
    site: Site,
    inc: Incoming,
    token: str,
    dmarc_policies: DmarcPolicies | None = None,
) -> None:
    """Mail to NAME-announce+TOKEN (offered after 'back'): posted once as the member's own post,
    through the list's moderation and posting like any other (issue 13)."""
    if not may_auto_reply(inc.msg, inc.mail_from, lst, site):
        log.info("%s-announce: automated mail from %s; not posted", lst.name, inc.sender)
        return
    ctx = membership.Context(
        s=s, cfg=cfg, lst=lst, site=site, now=inc.now, address=inc.sender or ""
    )
    try:
        member = membership.announcer(ctx, token)
    except TokenError as exc:
        log.info("%s-announce: %s from %s", lst.name, exc, inc.sender)
        if inc.sender:
            reply(s, lst, site, inc.sender, "member/bad_announce.txt", inc.now, problem=str(exc))
        return
    msg = RawMessage(inc.raw)
    msg.set("Subject", back_subject(inc.subject, lst.prefix))
    if inc.sender != member.address:  # the token speaks for the member, whoever's From it is
        msg.set("From", display(member.name, member.address))
    raw = msg.to_bytes()
    handle_post(
        s,
        cfg,
        lst,
        site,
        Incoming(raw=raw, mail_from=inc.mail_from, msg=RawMessage(raw), now=inc.now),
        dmarc_policies,
    )


def quotable_subject(inc: Incoming, auth: SenderAuth | None, subject: str) -> str:
    """The Subject, when a reply to the From address may quote it: only if the mail is
    authenticated as that address; else '' (a forged From must not carry a stranger's words
    to the victim: backscatter, issue 10)."""
    sender = inc.sender
    if auth is None or sender is None or not subject:
        return ""
    return subject if auth.authenticated(inc.raw, sender).ok else ""


def hold_notices(
    s: Session,
    lst: ListConfig,
    site: Site,
    post: Post,
    inc: Incoming,
    reason: str,
    tell_sender: bool = True,
    subject: str = "",
) -> None:
    """Tell the owners of a held post; and its sender, quoting `subject` (may be '')."""
    owners = sorted(set(lst.owners) | set(lst.moderators))
    notice(s, lst, site, owners, "admin/held.txt", inc.now, post=post, reason=reason)
    if tell_sender and post.sender and may_auto_reply(inc.msg, inc.mail_from, lst, site):
        reply(
            s,
            lst,
            site,
            post.sender,
            "member/held.txt",
            inc.now,
            subject=subject,
            reason=reason,
        )
