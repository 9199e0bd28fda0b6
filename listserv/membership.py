"""The one API for a member's state: join, confirm, leave, alumni, back, tokens, admin adds.

Email commands, the web pages and the CLI all change memberships through here. Each function
returns the sentence to show the person, queues the mail they should get in `ctx.replies`,
and raises an errors.py type (NotAMember, TokenError) for a problem the person can fix.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from listserv import retention
from listserv.addresses import list_address
from listserv.config import Config, ListConfig, Site
from listserv.errors import ListservError, NotAMember, TokenError
from listserv.notices import notice, reply
from listserv.states import LIVE, Delivery, EventKind, MemberStatus, TokenAction
from listserv.store import members, tokens
from listserv.store.tables import Member, Token
from listserv.text import clean_text

log = logging.getLogger("listserv.membership")

DELIVERY_WORDS = {
    Delivery.REGULAR: "every post as it is sent",
    Delivery.DIGEST: "a digest of the posts",
    Delivery.ALUMNI: "the low-volume alumni update",
}
MODES = tuple(Delivery)
BACK_REASON = "back: looking again"  # the reason of the switch 'back' makes (/metrics counts it)


@dataclass
class Reply:
    """A dedicated answer to send (a confirmation, a welcome, a goodbye)."""

    template: str
    ctx: dict = field(default_factory=dict)
    reply_to: str | None = None
    to: str | None = None  # when not the asker: the joiner an owner just approved


@dataclass
class Context:
    """Who acts on which list, in which store transaction; replies collect what to send."""

    s: Session
    cfg: Config
    lst: ListConfig
    site: Site
    now: datetime
    address: str  # the address the change is for
    replies: list[Reply] = field(default_factory=list)


# ---------------------------------------------------------------- links and confirmations


def links(ctx: Context, member: Member) -> dict[str, str]:
    """The member's one-step ways out, for templates."""
    return {
        "unsubscribe_url": ctx.site.url("u", member.token),
        "leave_address": list_address(ctx.lst.name, ctx.site.domain, "leave", member.token),
    }


def ask_to_confirm(
    ctx: Context, address: str, action: str, template: str, **payload: object
) -> str:
    """Make a token for action and queue the mail asking to confirm it; returns the token."""
    tok = tokens.create_token(
        ctx.s,
        ctx.lst.name,
        address,
        action,
        ctx.now,
        ctx.cfg.server.token_days,
        payload=dict(payload),
    )
    confirm_address = list_address(ctx.lst.name, ctx.site.domain, "confirm", tok.token)
    ctx.replies.append(
        Reply(
            template,
            {
                "token": tok.token,
                "confirm_address": confirm_address,
                "confirm_url": ctx.site.url("c", tok.token),
                "days": ctx.cfg.server.token_days,
                **payload,
            },
            reply_to=confirm_address,
        )
    )
    return tok.token


def not_member(ctx: Context) -> NotAMember:
    return NotAMember(
        f"{ctx.address} is not subscribed to {list_address(ctx.lst.name, ctx.site.domain)}; "
        f"send 'join' to {list_address(ctx.lst.name, ctx.site.domain, 'request')} to join."
    )


def current_member(ctx: Context) -> Member:
    """The asker's live membership (active or paused by bounces); NotAMember otherwise."""
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status not in LIVE:
        raise not_member(ctx)
    return member


# ---------------------------------------------------------------- the changes


def welcome(ctx: Context, member: Member) -> None:
    ctx.replies.append(
        Reply(
            "member/welcome.txt",
            {
                "member": member,
                **links(ctx, member),
                "delivery_words": DELIVERY_WORDS[Delivery(member.delivery)],
            },
            to=member.address,
        )
    )


def goodbye(ctx: Context, member: Member, reason: str) -> None:
    members.remove(ctx.s, member, ctx.now, reason)
    ctx.replies.append(Reply("member/goodbye.txt", {"member": member}))


def switch_to_alumni(ctx: Context, member: Member, reason: str, found_work: bool = True) -> None:
    """Alumni mode at once, with a note (congratulations when they found work) that keeps the
    full leave one step away."""
    members.set_delivery(ctx.s, member, Delivery.ALUMNI, ctx.now, reason)
    ctx.replies.append(
        Reply(
            "member/alumni_welcome.txt",
            {"member": member, "found_work": found_work, **links(ctx, member)},
        )
    )


def join(ctx: Context, mode: str = Delivery.REGULAR) -> str:
    """Start a double opt-in join (or refuse politely); returns what happened."""
    mode = mode.lower()
    if mode not in MODES:
        raise ListservError(
            f"'{mode}' is not a delivery mode; use 'join', 'join digest' or 'join alumni'."
        )
    if mode == Delivery.ALUMNI and not ctx.lst.alumni.enabled:
        raise ListservError("This list has no alumni mode; send 'join' or 'join digest'.")
    if ctx.lst.subscription == "closed":
        raise ListservError(
            "Sorry, this list is not taking new members by email; "
            "please write to the list owners if you would like to join."
        )
    existing = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if existing is not None and existing.status in LIVE:
        return f"You are already a member ({existing.delivery} delivery); nothing to do."
    if tokens.recent_token(
        ctx.s, ctx.lst.name, ctx.address, TokenAction.JOIN, ctx.now - timedelta(days=1)
    ):
        return "A confirmation was already sent to you today; please reply to that message."
    members.upsert_member(
        ctx.s, ctx.lst.name, ctx.address, ctx.now, status=MemberStatus.PENDING, delivery=mode
    )
    ask_to_confirm(ctx, ctx.address, TokenAction.JOIN, "member/confirm_join.txt", delivery=mode)
    return "Almost done: please confirm by replying to the confirmation message I just sent."


def switch_mode(ctx: Context, mode: Delivery) -> str:
    """The digest/regular commands: switch a live member's delivery mode."""
    member = current_member(ctx)
    if member.delivery == mode:
        return {
            Delivery.DIGEST: "You already get the digest.",
            Delivery.REGULAR: "You already get every post.",
        }[mode]
    members.set_delivery(ctx.s, member, mode, ctx.now, f"{mode} command")
    return {
        Delivery.DIGEST: "Done: from now on you get the digest instead of every post.",
        Delivery.REGULAR: "Done: from now on you get every post as it is sent.",
    }[mode]


def choose_alumni(ctx: Context) -> str:
    """The alumni command: switch a live member to the low-volume alumni update."""
    member = current_member(ctx)
    if not ctx.lst.alumni.enabled:
        return "This list has no alumni mode; you can use 'digest' for fewer mails."
    if member.delivery == Delivery.ALUMNI:
        return "You are already in alumni mode."
    switch_to_alumni(ctx, member, "alumni command", found_work=False)
    return "Done: you are now in alumni mode."


def back(ctx: Context) -> str:
    """'I'm looking again': every post again, bounces forgiven; a former member rejoins."""
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status in (MemberStatus.LEFT, MemberStatus.PENDING):
        return join(ctx)  # a former member comes back through the usual confirmation
    changed = []
    if member.status == MemberStatus.DISABLED:
        members.activate(ctx.s, member, ctx.now, "re-enabled by 'back'")
        changed.append("delivery is switched on again")
    if member.delivery != Delivery.REGULAR:
        members.set_delivery(ctx.s, member, Delivery.REGULAR, ctx.now, BACK_REASON)
        changed.append("you get every post again")
    if not changed:
        return "You already get every post; nothing to change."
    return f"Welcome back: {' and '.join(changed)}. Good luck with the search!"


def leave(ctx: Context, subject: str, body: str, via_token: Member | None = None) -> str:
    """A leave request, by the retention rules of SPEC section 5."""
    if via_token is not None:  # the member's own token: at once, no questions (rules 3, 4)
        if via_token.status == MemberStatus.LEFT:  # a second click: one goodbye is enough
            return "You had already left the list; there is nothing more to do."
        goodbye(ctx, via_token, "one-step leave with the member's own token")
        return "You have left the list."
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status == MemberStatus.LEFT:
        raise not_member(ctx)
    if member.status == MemberStatus.PENDING:
        members.remove(ctx.s, member, ctx.now, "left before confirming")
        return "Your pending subscription is cancelled."
    alumni = ctx.lst.alumni
    verdict = retention.classify_leave(subject, body, alumni.extra_job_phrases)
    if verdict.found_work and member.delivery != Delivery.ALUMNI:  # a hiring signal, whatever next
        members.log_event(
            ctx.s, ctx.lst.name, member.address, EventKind.JOB_LEAVE, verdict.phrase or "", ctx.now
        )
    elif not verdict.found_work:  # the other outcomes, counted by /metrics
        kind = EventKind.UNSURE_LEAVE if verdict.unsure else EventKind.OTHER_LEAVE
        members.log_event(ctx.s, ctx.lst.name, member.address, kind, verdict.phrase or "", ctx.now)
    job_leave = verdict.found_work and alumni.enabled and member.delivery != Delivery.ALUMNI
    if job_leave and alumni.on_job_leave == "alumni":  # rule 1
        switch_to_alumni(ctx, member, f"found work: {verdict.phrase}")
        return "Congratulations! You are now in alumni mode; see my other note."
    if job_leave and alumni.on_job_leave == "ask":  # rule 2
        alumni_token = tokens.create_token(
            ctx.s,
            ctx.lst.name,
            member.address,
            TokenAction.ALUMNI,
            ctx.now,
            ctx.cfg.server.token_days,
        ).token
        ask_to_confirm(
            ctx,
            member.address,
            TokenAction.LEAVE,
            "member/job_ask.txt",
            reason=f"found work: {verdict.phrase}",
            alumni_url=ctx.site.url("c", alumni_token),
        )
        return "Congratulations! Choose how you would like to go on; see my other note."
    reason = clean_text(subject, body)[:300] or "asked to leave"
    ask_to_confirm(
        ctx, member.address, TokenAction.LEAVE, "member/confirm_leave.txt", reason=reason
    )  # rules 3 and 4
    return "Please confirm by replying to the message I just sent."


def one_click_leave(ctx: Context, member: Member) -> None:
    """The RFC 8058 one-click unsubscribe: a full leave at once."""
    if member.status != MemberStatus.LEFT:
        goodbye(ctx, member, "one-click unsubscribe")


def add_by_admin(
    ctx: Context, address: str, delivery: str, name: str = "", send_welcome: bool = True
) -> str:
    """An organiser adds or re-activates a member (no confirmation round)."""
    existing = members.get_member(ctx.s, ctx.lst.name, address)
    if existing is not None and existing.status in LIVE:
        return "already a member"
    member = members.upsert_member(
        ctx.s,
        ctx.lst.name,
        address,
        ctx.now,
        status=MemberStatus.PENDING,
        delivery=delivery,
        name=name,
    )
    members.activate(ctx.s, member, ctx.now, "added by an admin")
    if send_welcome:
        welcome(ctx, member)
    return "added"


# ---------------------------------------------------------------- tokens


def apply_token(ctx: Context, token: str) -> str:
    """Spend a live confirmation token and do what it was made for; TokenError when it is
    unknown, used or expired."""
    tok = tokens.live_token(ctx.s, token, ctx.now)
    if (
        tok is None
        or tok.list_name != ctx.lst.name
        or not tokens.use_token(ctx.s, tok.token, ctx.now)
    ):
        raise TokenError(
            "That confirmation code is unknown, already used or expired; "
            "please send your request again."
        )
    if tok.action != TokenAction.APPROVE_JOIN:  # an approving owner gets the result
        ctx.address = tok.address
    return _ACTIONS[TokenAction(tok.action)](ctx, tok)


def _confirm_join(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None:
        return "That request was withdrawn; send 'join' to start again."
    if member.status in LIVE:
        return "You are already a member; nothing more to do."
    if ctx.lst.subscription == "approve":
        _ask_owners(ctx, tok.address)
        return "Thank you for confirming. The list owners will look at your request soon."
    members.activate(ctx.s, member, ctx.now, "confirmed by the member")
    welcome(ctx, member)
    return "Welcome! You are now a member."


def _ask_owners(ctx: Context, address: str) -> None:
    tok = tokens.create_token(
        ctx.s, ctx.lst.name, address, TokenAction.APPROVE_JOIN, ctx.now, ctx.cfg.server.token_days
    )
    confirm_address = list_address(ctx.lst.name, ctx.site.domain, "confirm", tok.token)
    notice(
        ctx.s,
        ctx.lst,
        ctx.site,
        ctx.lst.owners,
        "admin/approve_join.txt",
        ctx.now,
        reply_to=confirm_address,
        address=address,
        confirm_address=confirm_address,
        confirm_url=ctx.site.url("c", tok.token),
    )


def _approve_join(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status != MemberStatus.PENDING:
        return f"{tok.address} is no longer waiting to join."
    members.activate(ctx.s, member, ctx.now, "approved by an owner")
    welcome(ctx, member)
    return f"{member.address} is now a member."


def _confirm_leave(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status == MemberStatus.LEFT:
        return "You had already left the list."
    reason = json.loads(tok.payload or "{}").get("reason", "confirmed leave")
    goodbye(ctx, member, reason)
    return "You have left the list."


def _confirm_alumni(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status not in LIVE:
        return "You are no longer a member, so there is nothing to switch."
    switch_to_alumni(ctx, member, "chose alumni mode after finding work")
    return "You are now in alumni mode."


_ACTIONS = {
    TokenAction.JOIN: _confirm_join,
    TokenAction.APPROVE_JOIN: _approve_join,
    TokenAction.LEAVE: _confirm_leave,
    TokenAction.ALUMNI: _confirm_alumni,
}


# ---------------------------------------------------------------- answering


def send_replies(
    ctx: Context, results: list[tuple[str, str]] | None = None, in_reply_to: str | None = None
) -> None:
    """Queue the answers a change produced, within the daily cap: the dedicated replies, and
    a results mail first when there are results it alone does not say."""
    replies = list(ctx.replies)
    own = [r for r in replies if r.to in (None, ctx.address)]
    if results and not (len(own) == 1 and len(results) == 1):
        replies.insert(0, Reply("commands/results.txt", {"results": results}))
    for r in replies:
        to = r.to or ctx.address
        if not reply(
            ctx.s,
            ctx.lst,
            ctx.site,
            to,
            r.template,
            ctx.now,
            reply_to=r.reply_to,
            in_reply_to=in_reply_to if to == ctx.address else None,
            **r.ctx,
        ):
            log.info("%s: daily reply cap reached for %s", ctx.lst.name, to)


def send_notices(ctx: Context) -> None:
    """Queue the dedicated replies as notices: no cap, no results mail (an organiser's add)."""
    for r in ctx.replies:
        notice(
            ctx.s,
            ctx.lst,
            ctx.site,
            r.to or ctx.address,
            r.template,
            ctx.now,
            reply_to=r.reply_to,
            **r.ctx,
        )
