"""Email commands: read the command lines of a mail, run them, answer with one reply."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re

from sqlmodel import Session

from listserv.commands.registry import COMMANDS, Context, Outcome, lookup
from listserv.config import Config, ListConfig, Site
from listserv.errors import ListservError
from listserv.fields import match_field
from listserv.membership import send_replies
from listserv.message import Incoming
from listserv.notices import may_auto_reply, reply
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
        shown = clean_arg(" ".join(words))
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


# Which command a single-purpose address stands for (SPEC section 3).
ADDRESS_COMMANDS = {"join": "join", "subscribe": "join", "leave": "leave", "unsubscribe": "leave"}


def handle_command_mail(
    s: Session, cfg: Config, lst: ListConfig, site: Site, inc: Incoming, suffix: str, detail: str
) -> None:
    """Mail to -request, -join, -leave, -leave+TOKEN or -confirm+TOKEN: run it and answer once."""
    address = inc.sender
    if address is None:
        log.info("%s-%s: no sender address; ignored", lst.name, suffix)
        return
    subject, body = inc.subject, inc.text()
    ctx = Context(
        s=s, cfg=cfg, lst=lst, site=site, now=inc.now, address=address, subject=subject, body=body
    )
    if suffix == "leave" and detail:
        member = members.member_by_token(s, detail)
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
    if not lines:  # a reply naming just a field, as the welcome and alumni notes invite
        lines = field_reply(lst, body)
    if not lines:  # nothing we understood: answer with the help text alone, saying so
        run(ctx, [["help"]])
        ctx.replies[-1].ctx["unrecognised"] = True
    else:
        run(ctx, lines)
    if not may_auto_reply(inc.msg, inc.mail_from, lst, site):
        log.info("%s: no reply to %s (auto-submitted, bulk or looping mail)", lst.name, address)
        return
    send_replies(ctx, ctx.results, inc.message_id or None)


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
