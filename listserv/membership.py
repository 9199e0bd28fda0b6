"""The one API for a member's state: join, confirm, leave, alumni, back, tokens, admin adds.

Email commands, the web pages and the CLI all change memberships through here. Each function
returns the sentence to show the person, queues the mail they should get in `ctx.replies`,
and raises an errors.py type (NotAMember, TokenError) for a problem the person can fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from listserv import retention
from listserv.addresses import list_address
from listserv.config import Config, ListConfig, Site
from listserv.digest.build import cadence_word
from listserv.errors import ListservError, NotAMember, TokenError
from listserv.fields import NONE_WORDS, match_field
from listserv.notices import notice, reply
from listserv.retention import LeaveOutcome
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
LEAVE_EVENTS = {
    LeaveOutcome.FOUND_WORK: EventKind.JOB_LEAVE,
    LeaveOutcome.UNSURE: EventKind.UNSURE_LEAVE,
    LeaveOutcome.OTHER: EventKind.OTHER_LEAVE,
}
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
    # Is the asker the member? None: yes (a web page behind a token, the CLI, a confirmation);
    # for mail, a check of its token or sender authentication (SPEC 5, issue 10).
    authenticated: Callable[[], bool] | None = None
    # Changes waiting for the member's confirmation: (change, args, what will change).
    deferred: list[tuple[str, list[str], str]] = field(default_factory=list)


# ---------------------------------------------------------------- links and confirmations


def links(ctx: Context, member: Member) -> dict[str, str]:
    """The member's one-step ways out (a full leave) and sideways (stay as an alumnus)."""
    name, domain, token = ctx.lst.name, ctx.site.domain, member.token
    return {
        "unsubscribe_url": ctx.site.url("u", token),
        "leave_address": list_address(name, domain, "leave", token),
        "alumni_url": ctx.site.url("a", token),
        "alumni_address": list_address(name, domain, "alumni", token),
    }


def ask_to_confirm(
    ctx: Context,
    address: str,
    action: str,
    template: str,
    shown: dict[str, object] | None = None,
    **payload: object,
) -> str:
    """Make a token for action (payload kept with it) and queue the mail asking to confirm
    it, its template also seeing shown; returns the token."""
    tok = tokens.create_token(
        ctx.s, ctx.lst.name, address, action, ctx.now, ctx.cfg.server.token_days, payload=payload
    )
    confirm_address = list_address(ctx.lst.name, ctx.site.domain, "confirm", tok.token)
    template_ctx = {
        "token": tok.token,
        "confirm_address": confirm_address,
        "confirm_url": ctx.site.url("c", tok.token),
        "days": ctx.cfg.server.token_days,
        **payload,
        **(shown or {}),
    }
    ctx.replies.append(Reply(template, template_ctx, reply_to=confirm_address))
    return tok.token


# ---------------------------------------------------------------- only the member changes it

NOT_YET = "Nothing is changed yet: please confirm by replying to the message I just sent."


def must_confirm(ctx: Context, change: str, args: list[str], what: str) -> bool:
    """True when a change may not be made at once, because the mail asking for it is not
    known to be the member's own (SPEC 5, "Only the member changes a membership"); the change
    is then noted, and ask_to_confirm_changes asks the member to confirm it. `change` names
    an entry of CHANGES, `what` says in a sentence what will change."""
    if ctx.authenticated is None or ctx.authenticated():
        return False
    ctx.deferred.append((change, list(args), what))
    return True


def asked_already(ctx: Context) -> bool:
    """Whether the member was asked today to confirm exactly the changes now noted and has
    not answered: a repeated (or flooding) forgery gets no second mail."""
    prior = tokens.recent_token(
        ctx.s, ctx.lst.name, ctx.address, TokenAction.CHANGE, ctx.now - timedelta(days=1)
    )
    changes = [[change, *args] for change, args, _ in ctx.deferred]
    return prior is not None and json.loads(prior.payload or "{}").get("changes") == changes


def ask_to_confirm_changes(ctx: Context) -> None:
    """One confirmation to the member's address for every change noted by must_confirm."""
    if not ctx.deferred:
        return
    ask_to_confirm(
        ctx,
        ctx.address,
        TokenAction.CHANGE,
        "member/confirm_change.txt",
        changes=[[change, *args] for change, args, _ in ctx.deferred],
        what=[what for _, _, what in ctx.deferred],
    )
    ctx.deferred = []


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
                "delivery_words": delivery_words(ctx.lst, Delivery(member.delivery)),
                "fields": list(ctx.lst.field_table),
            },
            to=member.address,
        )
    )


def offers_alumni(ctx: Context, member: Member) -> bool:
    """Every leave confirmation and goodbye offers alumni mode, unless the member already is
    an alumnus or the list has none (SPEC 5, rule 3)."""
    return ctx.lst.alumni.enabled and member.delivery != Delivery.ALUMNI


_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
# A cron day-of-week field: 'mon' or 0-7 (0 and 7 are Sunday).
_DAYS = {
    **{day[:3].lower(): day for day in _WEEKDAYS},
    **{str(i): day for i, day in enumerate(_WEEKDAYS)},
    "7": "Sunday",
}


def delivery_words(lst: ListConfig, delivery: Delivery) -> str:
    """What a member in this mode gets, saying how often digests come (issue 11).

    >>> delivery_words(ListConfig(name="n", title="N"), Delivery.DIGEST)
    'a digest of the posts once a week, on Mondays'
    """
    if delivery != Delivery.DIGEST:
        return DELIVERY_WORDS[delivery]
    word = cadence_word(lst.digest.schedule)
    day = _DAYS.get(lst.digest.schedule.split()[-1].lower(), "")
    if word == "Weekly":
        return f"a digest of the posts once a week{f', on {day}s' if day else ''}"
    if word in ("Daily", "Monthly"):
        return f"a digest of the posts once a {'day' if word == 'Daily' else 'month'}"
    return f"a digest of the posts on the list's schedule ({lst.digest.schedule})"


def goodbye(ctx: Context, member: Member, reason: str) -> None:
    offer = offers_alumni(ctx, member)
    members.remove(ctx.s, member, ctx.now, reason)
    shown = {"member": member, "offer_alumni": offer, **links(ctx, member)}
    ctx.replies.append(Reply("member/goodbye.txt", shown))


def switch_to_alumni(ctx: Context, member: Member, reason: str, found_work: bool = True) -> None:
    """Alumni mode at once, with a note (congratulations when they found work) that keeps the
    full leave one step away."""
    members.set_delivery(ctx.s, member, Delivery.ALUMNI, ctx.now, reason)
    ctx.replies.append(
        Reply(
            "member/alumni_welcome.txt",
            {
                "member": member,
                "found_work": found_work,
                "fields": list(ctx.lst.field_table),
                **links(ctx, member),
            },
        )
    )


def join(ctx: Context, mode: str = Delivery.REGULAR) -> str:
    """Start a double opt-in join (or refuse politely); returns what happened."""
    mode = mode.lower()
    if mode not in MODES:
        raise ListservError(
            "That is not a delivery mode; use 'join', 'join digest' or 'join alumni'."
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
    if must_confirm(ctx, "mode", [mode], f"you will get {DELIVERY_WORDS[mode]}"):
        return NOT_YET
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
    if must_confirm(ctx, "alumni", [], f"you will get {DELIVERY_WORDS[Delivery.ALUMNI]}"):
        return NOT_YET
    switch_to_alumni(ctx, member, "alumni command", found_work=False)
    return "Done: you are now in alumni mode."


def stay_as_alumni(ctx: Context, member: Member) -> str:
    """The one-step alumni offer (BASE/a/TOKEN, NAME-alumni+TOKEN@): switch at once; a member
    who has just left comes back as an alumnus."""
    if not ctx.lst.alumni.enabled:
        return "This list has no alumni mode, so there is nothing to switch."
    if member.status in LIVE and member.delivery == Delivery.ALUMNI:
        return "You are already in alumni mode."
    if member.status == MemberStatus.PENDING:
        return "Your subscription is not confirmed yet; please reply to the confirmation first."
    if member.status == MemberStatus.LEFT:
        members.activate(ctx.s, member, ctx.now, "came back as an alumnus after leaving")
    since = ctx.now - timedelta(days=ctx.cfg.server.token_days)
    found_work = members.has_event(
        ctx.s, ctx.lst.name, member.address, EventKind.JOB_LEAVE, since
    )  # congratulate a member who just told us they found work
    switch_to_alumni(ctx, member, "chose to stay as an alumnus", found_work=found_work)
    return "Done: you are now in alumni mode."


def back(ctx: Context) -> str:
    """'I'm looking again': every post again, bounces forgiven; a former member rejoins."""
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status in (MemberStatus.LEFT, MemberStatus.PENDING):
        return join(ctx)  # a former member comes back through the usual confirmation
    if (member.status == MemberStatus.DISABLED or member.delivery != Delivery.REGULAR) and (
        must_confirm(ctx, "back", [], f"you will get {DELIVERY_WORDS[Delivery.REGULAR]} again")
    ):
        return NOT_YET
    changed = []
    if member.status == MemberStatus.DISABLED:
        members.activate(ctx.s, member, ctx.now, "re-enabled by 'back'")
        changed.append("delivery is switched on again")
    if member.delivery != Delivery.REGULAR:
        members.set_delivery(ctx.s, member, Delivery.REGULAR, ctx.now, BACK_REASON)
        changed.append("you get every post again")
    if not changed:
        return "You already get every post; nothing to change."
    offer_announcement(ctx, member)
    return f"Welcome back: {' and '.join(changed)}. Good luck with the search!"


ANNOUNCE_DAYS = 14


def offer_announcement(ctx: Context, member: Member) -> None:
    """'I'm back' reaches the group: a 14-day token for one post through NAME-announce+TOKEN,
    named in a welcome-back reply (issue 13); the comeback is logged for the pulse and stats."""
    members.log_event(ctx.s, ctx.lst.name, member.address, EventKind.BACK, "back", ctx.now)
    tok = tokens.create_token(
        ctx.s, ctx.lst.name, member.address, TokenAction.ANNOUNCE, ctx.now, ANNOUNCE_DAYS
    )
    ctx.replies.append(
        Reply(
            "member/back.txt",
            {
                "member": member,
                "announce_address": list_address(
                    ctx.lst.name, ctx.site.domain, "announce", tok.token
                ),
                "days": ANNOUNCE_DAYS,
                "field": member.field,
                "fields": list(ctx.lst.field_table),
                **links(ctx, member),
            },
        )
    )


def announcer(ctx: Context, token: str) -> Member:
    """The member a NAME-announce+TOKEN mail speaks for; the token is spent (one post)."""
    tok = tokens.live_token(ctx.s, token, ctx.now)
    member = None
    if tok is not None and tok.list_name == ctx.lst.name and tok.action == TokenAction.ANNOUNCE:
        member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status not in LIVE or not tokens.use_token(ctx.s, token, ctx.now):
        raise TokenError(
            "That announcement address is unknown, already used or expired; send 'back' "
            f"to {list_address(ctx.lst.name, ctx.site.domain, 'request')} for a new one."
        )
    return member


def set_field(ctx: Context, words: list[str]) -> str:
    """The field command: 'field NAME' sets, 'field none' clears, 'field' alone lists."""
    table = ctx.lst.field_table
    if not table:
        return "This list does not use fields; there is nothing to set."
    member = current_member(ctx)
    text = " ".join(words).strip()
    if not text:
        mine = f"Yours is {member.field}." if member.field else "You have not chosen one yet."
        return f"The fields are: {'; '.join(table)}. {mine} Send 'field NAME' to choose."
    if text.lower() in NONE_WORDS:
        if must_confirm(ctx, "field", ["none"], "your field will be cleared"):
            return NOT_YET
        members.set_field(ctx.s, member, "")
        return "Done: you no longer have a field."
    found = match_field(text, table)
    if found is None:
        raise ListservError(
            f"'{text}' is not one of this list's fields; send 'field' alone to see them."
        )
    if must_confirm(ctx, "field", [found], f"your field will be {found}"):
        return NOT_YET
    members.set_field(ctx.s, member, found)
    return f"Done: your field is now {found}."


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
        if must_confirm(ctx, "cancel", [], "your request to join will be cancelled"):
            return NOT_YET
        return cancel_pending(ctx, member)
    alumni = ctx.lst.alumni
    verdict = retention.classify_leave(subject, body, alumni.extra_job_phrases)
    offer = offers_alumni(ctx, member)
    switch = verdict.found_work and offer and alumni.on_job_leave == "alumni"
    if switch:  # rule 1, once the mail is known to be the member's
        what = f"you will get {DELIVERY_WORDS[Delivery.ALUMNI]} instead of every post"
        if must_confirm(ctx, "found-work", [verdict.phrase or ""], what):
            return NOT_YET
    if member.delivery != Delivery.ALUMNI or not verdict.found_work:
        # Every leave request's outcome is counted (the pulse counts job leaves, a hiring
        # signal, whatever happens next; /metrics all three), with the words that decided it.
        kind = LEAVE_EVENTS[verdict.outcome]
        members.log_event(ctx.s, ctx.lst.name, member.address, kind, verdict.phrase or "", ctx.now)
    if switch:  # rule 1
        switch_to_alumni(ctx, member, f"found work: {verdict.phrase}")
        return "Congratulations! You are now in alumni mode; see my other note."
    asked = verdict.unsure or (verdict.found_work and alumni.on_job_leave == "ask")
    if offer and asked:  # rules 2 and 3: unsure is asked, never guessed
        shown = {"found_work": verdict.found_work, **links(ctx, member)}
        reason = f"{verdict.outcome}: {verdict.phrase}"
        ask_to_confirm(
            ctx, member.address, TokenAction.LEAVE, "member/job_ask.txt", shown, reason=reason
        )
        return "Choose how you would like to go on; see my other note."
    shown = {"offer_alumni": offer, **links(ctx, member)}
    reason = leave_reason(subject, body)
    ask_to_confirm(
        ctx, member.address, TokenAction.LEAVE, "member/confirm_leave.txt", shown, reason=reason
    )  # rules 3 and 4
    return "Please confirm by replying to the message I just sent."


def leave_reason(subject: str, body: str) -> str:
    """The leave's own words, each line once: a Subject repeated in the body is said once.

    >>> leave_reason("unsubscribe", "Unsubscribe")
    'unsubscribe'
    """
    seen: dict[str, str] = {}
    for line in clean_text(subject, body).splitlines():
        seen.setdefault(" ".join(line.lower().split()), line.strip())
    return "\n".join(v for v in seen.values() if v)[:300] or "asked to leave"


def cancel_pending(ctx: Context, member: Member) -> str:
    members.remove(ctx.s, member, ctx.now, "left before confirming")
    return "Your pending subscription is cancelled."


def one_click_leave(ctx: Context, member: Member) -> None:
    """The RFC 8058 one-click unsubscribe: a full leave at once."""
    if member.status != MemberStatus.LEFT:
        goodbye(ctx, member, "one-click unsubscribe")


def add_by_admin(
    ctx: Context,
    address: str,
    delivery: str,
    name: str = "",
    send_welcome: bool = True,
    field: str = "",
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
    if field:
        members.set_field(ctx.s, member, field)
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
    # The token was mailed to the member: what it was made for is the member's own answer
    # (and nothing else in the same mail becomes so).
    asked_by, ctx.authenticated = ctx.authenticated, None
    try:
        return _ACTIONS[TokenAction(tok.action)](ctx, tok)
    finally:
        ctx.authenticated = asked_by


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
    # No new ALUMNI tokens are made (the offer is the member's own /a/TOKEN now); this serves
    # the ones mailed before an upgrade until they expire.
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status not in LIVE:
        return "You are no longer a member, so there is nothing to switch."
    switch_to_alumni(ctx, member, "chose alumni mode after finding work")
    return "You are now in alumni mode."


def _found_work(ctx: Context, args: list[str]) -> str:
    member = current_member(ctx)
    if member.delivery == Delivery.ALUMNI:
        return "You are already in alumni mode."
    phrase = args[0] if args else ""
    members.log_event(ctx.s, ctx.lst.name, member.address, EventKind.JOB_LEAVE, phrase, ctx.now)
    switch_to_alumni(ctx, member, f"found work: {phrase}")
    return "Congratulations! You are now in alumni mode; see my other note."


def _cancel(ctx: Context, args: list[str]) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status != MemberStatus.PENDING:
        return "There was no pending subscription to cancel."
    return cancel_pending(ctx, member)


# What a confirmed CHANGE token does, by the change names must_confirm is given.
CHANGES: dict[str, Callable[[Context, list[str]], str]] = {
    "mode": lambda ctx, args: switch_mode(ctx, Delivery(args[0])),
    "alumni": lambda ctx, args: choose_alumni(ctx),
    "back": lambda ctx, args: back(ctx),
    "field": set_field,
    "found-work": _found_work,
    "cancel": _cancel,
}


def _confirm_change(ctx: Context, tok: Token) -> str:
    done = []
    for change, *args in json.loads(tok.payload or "{}").get("changes", []):
        try:
            done.append(CHANGES[change](ctx, args))
        except (KeyError, ValueError, IndexError):
            log.warning("%s: token %s names an unknown change %r", ctx.lst.name, tok.token, change)
        except ListservError as exc:
            done.append(str(exc))
    return " ".join(done) or "There was nothing to change."


_ACTIONS = {
    TokenAction.CHANGE: _confirm_change,
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
