"""Email commands: read the command lines of a mail, run them, answer with one reply."""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
import re
from collections.abc import Callable

from sqlmodel import Session

from listserv.addresses import sender_address
from listserv.commands.registry import COMMANDS, Context, Outcome, lookup
from listserv.config import Config, ListConfig, Site
from listserv.errors import ListservError
from listserv.membership import NOT_YET, ask_to_confirm_changes, asked_already, send_replies
from listserv.message import Incoming
from listserv.notices import may_auto_reply, reply
from listserv.sender_auth import SenderAuth
from listserv.states import Delivery
from listserv.store import members
from listserv.text import strip_markers

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
        log.info(
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
    """Mail to -request, -join, -leave, -leave+TOKEN or -confirm+TOKEN: run it and answer once.

    A change it asks for is made at once only when sender_check says the mail is the member's
    own; else one confirmation goes to the member's address (auth None: never authenticated).
    """
    address = inc.sender
    if address is None:
        log.info("%s-%s: no sender address; ignored", lst.name, suffix)
        return
    subject, body = inc.subject, inc.text()
    ctx = Context(
        s=s, cfg=cfg, lst=lst, site=site, now=inc.now, address=address, subject=subject, body=body
    )
    ctx.authenticated = sender_check(ctx, inc, auth)
    if suffix == "leave" and detail:
        member = members.member_by_token(s, detail) or members.former_member(s, detail)
        if member is None or member.list_name != lst.name:
            log.info("%s: leave with an unknown token from %s", lst.name, address)
            if may_auto_reply(inc.msg, inc.mail_from, lst, site):
                reply(s, lst, site, address, "member/bad_token.txt", inc.now)
            return
        ctx.address, ctx.via_token = member.address, member
        lines = [["leave"]]
    elif not may_auto_reply(inc.msg, inc.mail_from, lst, site):
        # Machines (bounces, out-of-office replies, list traffic) never change a membership;
        # only a member-token leave is honoured from them, since leaving must always be easy.
        log.info("%s-%s: automated mail from %s; no command run", lst.name, suffix, address)
        return
    elif suffix == "confirm":
        lines = [["confirm", detail]] if detail else command_lines(subject, body)
    elif suffix in ADDRESS_COMMANDS:
        lines = [[ADDRESS_COMMANDS[suffix]]]
    else:
        lines = command_lines(subject, body)
    if any(words[0].lower() not in READING for words in lines):
        trusted(ctx)  # ask now, before a command writes: DKIM may wait on DNS (issue 10)
    if not lines:  # nothing we understood: answer with the help text alone, saying so
        run(ctx, [["help"]])
        ctx.replies[-1].ctx["unrecognised"] = True
    else:
        run(ctx, lines)
    only_changes = bool(ctx.deferred) and all(text == NOT_YET for _, text in ctx.results)
    if only_changes and asked_already(ctx):
        log.info("%s: %s was already asked to confirm these changes", lst.name, ctx.address)
        return
    ask_to_confirm_changes(ctx)
    if not may_auto_reply(inc.msg, inc.mail_from, lst, site):
        log.info("%s: no reply to %s (auto-submitted, bulk or looping mail)", lst.name, address)
        return
    # Changes only: the confirmation alone says it all (one reply, SPEC 5).
    send_replies(ctx, None if only_changes else ctx.results, inc.message_id or None)


def load_commands() -> None:
    """Import every module in this package so each registers its command."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


load_commands()
