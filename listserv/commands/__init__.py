"""Email commands: read the command lines of a mail, run them, answer with one reply."""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
import re
from collections.abc import Callable

from sqlmodel import Session

from listserv import membership
from listserv.addresses import list_address, sender_address
from listserv.commands.registry import COMMANDS, Context, Outcome, lookup
from listserv.config import Config, ListConfig, Site
from listserv.errors import ListservError
from listserv.fields import match_field
from listserv.membership import (
    NOT_YET,
    Reply,
    ask_to_confirm_changes,
    asked_already,
    send_replies,
)
from listserv.message import Incoming
from listserv.notices import may_auto_reply, reply
from listserv.sender_auth import SenderAuth
from listserv.states import Delivery
from listserv.store import members
from listserv.text import own_lines, strip_markers

log = logging.getLogger("listserv.commands")

__all__ = ["COMMANDS", "command_lines", "handle_command_mail", "run"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_arg(text: str) -> str:
    """An argument as it may be echoed back: no control characters, no CR/LF, bounded length."""
    return _CONTROL.sub(" ", text).strip()[:200]


def command_lines(subject: str, body: str) -> list[list[str]]:
    """The command lines of a mail: the Subject (when it is a command) then body lines until
    a line that is not a command, a signature, quoted text or 'end'.

    >>> command_lines("Re: join", "help\\nthanks!\\ninfo")
    [['join'], ['help']]
    """
    lines: list[list[str]] = []
    subject_words = strip_markers(subject).split()
    if subject_words and lookup(subject_words[0]):
        lines.append(subject_words)
    for raw_line in body.splitlines():
        if raw_line.startswith(">") or raw_line.rstrip() == "--" or raw_line.startswith("-- "):
            break
        words = raw_line.split()
        if not words:
            continue
        cmd = lookup(words[0])
        if cmd is None:
            break
        lines.append(words)
        if cmd.name == "end":
            break
    return dedupe(lines)


def dedupe(lines: list[list[str]]) -> list[list[str]]:
    """Drop repeats (a Subject 'help' and a body 'help' are one request)."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for words in lines:
        key = tuple(w.lower() for w in words)
        if key not in seen:
            seen.add(key)
            out.append(words)
    return out


def run(ctx: Context, lines: list[list[str]]) -> None:
    """Run command lines in order, recording each result in ctx; a ListservError a command
    raises becomes that command's result line."""
    for words in lines:
        cmd = lookup(words[0])
        if cmd is None:
            continue
        shown = clean_arg(" ".join(words if trusted(ctx) else known_words(words)))
        before = len(ctx.results)
        try:
            outcome = cmd.run(ctx, [clean_arg(w) for w in words[1:]])
        except ListservError as exc:
            ctx.result("", str(exc))
            outcome = Outcome.CONTINUE
        if len(ctx.results) == before:
            ctx.result(shown, "Done.")
        else:
            ctx.results[before] = (shown, ctx.results[before][1])
        if outcome is Outcome.STOP:
            break


# Commands that change no membership at once (a join is confirmed by mail anyway).
READING = frozenset({"help", "info", "end", "confirm", "join", "subscribe"})


def trusted(ctx: Context) -> bool:
    """Whether the mail came from the member's address (a token, or authenticated): only then
    may a results line quote what the sender wrote beyond the command words (issue 10)."""
    return ctx.authenticated is None or ctx.authenticated()


def known_words(words: list[str]) -> list[str]:
    """A command line as it may be quoted to an unauthenticated address: its command word and
    the arguments that are command words or delivery modes; anything else becomes '...'.

    >>> known_words(["leave", "Buy", "pills", "digest"])
    ['leave', '...', 'digest']
    """
    shown = [words[0]]
    for word in words[1:]:
        known = lookup(word) is not None or word.lower() in tuple(Delivery)
        if known:
            shown.append(word)
        elif shown[-1] != "...":
            shown.append("...")
    return shown


def sender_check(ctx: Context, inc: Incoming, auth: SenderAuth | None) -> Callable[[], bool]:
    """Is this mail from the member's own address? Through their token, or authenticated as
    its From: address by `sender_auth` (SPEC 5, "Only the member changes a membership").
    Asked only when a change is about to be made, and then once: DKIM may wait on DNS."""
    from_address = sender_address(inc.msg.get("from"))

    @functools.cache
    def verified() -> bool:
        if auth is None or from_address is None or from_address != ctx.address:
            return False
        verdict = auth.authenticated(inc.raw, from_address)
        log.debug(
            "%s: mail from %s: %s (%s)", ctx.lst.name, from_address, verdict.ok, verdict.detail
        )
        return verdict.ok

    return lambda: ctx.via_token is not None or verified()


# Which command a single-purpose address stands for (SPEC section 3).
ADDRESS_COMMANDS = {"join": "join", "subscribe": "join", "leave": "leave", "unsubscribe": "leave"}


def handle_command_mail(
    s: Session,
    cfg: Config,
    lst: ListConfig,
    site: Site,
    inc: Incoming,
    suffix: str,
    detail: str,
    auth: SenderAuth | None = None,
) -> None:
    """Mail to -request, -join, -leave[+TOKEN], -alumni+TOKEN or -confirm+TOKEN: run it and
    answer once.

    A change it asks for is made at once only when it came through the member's token or
    sender_check says the mail is the member's own; else one confirmation goes to the member's
    address (auth None: never authenticated).
    """
    address = inc.sender
    if address is None:
        log.debug("%s-%s: no sender address; ignored", lst.name, suffix)
        return
    subject, body = inc.subject, inc.text()
    ctx = Context(
        s=s, cfg=cfg, lst=lst, site=site, now=inc.now, address=address, subject=subject, body=body
    )
    ctx.authenticated = sender_check(ctx, inc, auth)
    automated = not may_auto_reply(inc.msg, inc.mail_from, lst, site)
    lines: list[list[str]] = []
    if suffix in ("leave", "alumni") and detail:  # a member token: one step, no questions
        member = members.member_by_token(s, detail)
        if member is None and suffix == "leave":
            member = members.former_member(s, detail)  # a spent token: "you have left"
        if member is None or member.list_name != lst.name:
            log.debug("%s: %s with an unknown token from %s", lst.name, suffix, address)
            if not automated:
                reply(s, lst, site, address, "member/bad_token.txt", inc.now)
            return
        if automated and suffix != "leave":
            # Leaving must always be easy, so a token leave is honoured even from a machine;
            # nothing else is (an auto-responder must not switch a member to alumni).
            log.debug("%s-%s: automated mail from %s; nothing changed", lst.name, suffix, address)
            return
        ctx.address, ctx.via_token = member.address, member
        if suffix == "leave":
            lines = [["leave"]]
        else:
            ctx.result("alumni", membership.stay_as_alumni(ctx, member))
    elif automated:
        # Machines (bounces, out-of-office replies, list traffic) never change a membership.
        log.debug("%s-%s: automated mail from %s; no command run", lst.name, suffix, address)
        return
    elif suffix == "confirm":
        lines = [["confirm", detail]] if detail else command_lines(subject, body)
    elif suffix in ADDRESS_COMMANDS:
        lines = [[ADDRESS_COMMANDS[suffix]]]
    elif is_stop_request(subject, body):
        lines = [["leave"]]
    else:
        lines = command_lines(subject, body)
    if not lines and not ctx.results:  # a reply naming just a field, as the notes invite
        lines = field_reply(lst, body)
    if any(words[0].lower() not in READING for words in lines):
        trusted(ctx)  # ask now, before a command writes: DKIM may wait on DNS (issue 10)
    if not lines and not ctx.results:  # "thank you!" to a welcome: a short, kind answer
        answer_no_command(ctx, inc)
        return
    run(ctx, lines)
    only_changes = bool(ctx.deferred) and all(text == NOT_YET for _, text in ctx.results)
    if only_changes and asked_already(ctx):
        log.debug("%s: %s was already asked to confirm these changes", lst.name, ctx.address)
        return
    ask_to_confirm_changes(ctx)
    if automated:  # a machine's token leave is honoured, never answered
        log.debug("%s: no reply to %s (auto-submitted, bulk or looping mail)", lst.name, address)
        return
    # Changes only: the confirmation alone says it all (one reply, SPEC 5).
    send_replies(ctx, None if only_changes else ctx.results, inc.message_id or None)


# "Stop" means stop (issue 9): a command mail saying only one of these is a leave.
STOP_WORDS = frozenset({"stop", "remove", "unsubscribe me", "remove me", "stop please"})


def is_stop_request(subject: str, body: str) -> bool:
    """True when the mail's only words are 'stop', 'remove' or 'unsubscribe me' (any case).

    >>> is_stop_request("", "STOP"), is_stop_request("stop", ""), is_stop_request("", "stop\\nhelp")
    (True, True, False)
    """
    text = " ".join([strip_markers(subject), *own_lines(body)])
    words = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    return words in STOP_WORDS


def answer_no_command(ctx: Context, inc: Incoming) -> None:
    """A mail with no command in it: say kindly where it should go (within the reply cap)."""
    log.debug("%s: no command in the mail from %s; short answer", ctx.lst.name, ctx.address)
    owner = list_address(ctx.lst.name, ctx.site.domain, "owner")
    ctx.replies.append(Reply("commands/no_command.txt", {"owner_address": owner}))
    send_replies(ctx, None, inc.message_id or None)


def field_reply(lst: ListConfig, body: str) -> list[list[str]]:
    """[['field', NAME]] when the mail's own words are just one of the list's field names
    ("Healthcare", "software"); a longer sentence is not taken for a field (issue 13)."""
    own = [line for line in own_lines(body) if line.strip()]
    signed = len(own) == 2 and len(own[1].split()) <= 3  # "Healthcare" then a signed name
    if not own or (len(own) > 1 and not signed) or len(own[0].split()) > 4:
        return []
    if not lst.field_table:
        return []
    found = match_field(own[0].strip(" .!"), lst.field_table)
    return [["field", found]] if found else []


def load_commands() -> None:
    """Import every module in this package so each registers its command."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


load_commands()
