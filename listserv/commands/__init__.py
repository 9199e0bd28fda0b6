"""Email commands: the registry, line parsing, running them and answering with one reply."""

from __future__ import annotations

import enum
import importlib
import logging
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from listserv.config import Config, ListConfig
from listserv.message import first_text, parse, strip_markers
from listserv.notices import may_auto_reply, reply
from listserv.posting import Site
from listserv.store.tables import Member

if TYPE_CHECKING:
    from listserv.dispatch import Incoming

log = logging.getLogger("listserv.commands")


class Outcome(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"


@dataclass
class Reply:
    """A dedicated answer a command wants sent (a confirmation, a welcome, a goodbye)."""

    template: str
    ctx: dict = field(default_factory=dict)
    reply_to: str | None = None
    to: str | None = None  # when not the asker: the joiner an owner just approved


@dataclass
class Context:
    """What a command sees: the list, who asked, the store session and where results go."""

    s: Session
    cfg: Config
    lst: ListConfig
    site: Site
    now: datetime
    address: str  # the address the command acts for
    subject: str = ""  # as received; kept apart from the body so the job-found classifier
    body: str = ""  # can drop a "Re:" subject and quoted text (SPEC 5, rule 1)
    via_token: Member | None = None  # set when the mail came through the member's own token
    results: list[tuple[str, str]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)

    def result(self, line: str, text: str) -> None:
        self.results.append((line, text))


Handler = Callable[[Context, list[str]], Outcome]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    summary: str
    aliases: tuple[str, ...]
    run: Handler


COMMANDS: dict[str, Command] = {}
_WORDS: dict[str, Command] = {}


def command(name: str, *, usage: str, summary: str, aliases: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register an email command; a name or alias may be taken only once."""

    def register(fn: Handler) -> Handler:
        cmd = Command(name, usage, summary, aliases, fn)
        for word in (name, *aliases):
            if word in _WORDS:
                raise ValueError(f"email command {word!r} is registered twice")
            _WORDS[word] = cmd
        COMMANDS[name] = cmd
        return fn

    return register


def load_commands() -> None:
    """Import every module in this package so each registers its command."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def lookup(word: str) -> Command | None:
    return _WORDS.get(word.lower())


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
        if lookup(words[0]) is None:
            break
        lines.append(words)
        if lookup(words[0]).name == "end":  # type: ignore[union-attr]
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
    """Run command lines in order, recording each result in ctx."""
    for words in lines:
        cmd = lookup(words[0])
        if cmd is None:
            continue
        shown = clean_arg(" ".join(words))
        before = len(ctx.results)
        outcome = cmd.run(ctx, [clean_arg(w) for w in words[1:]])
        if len(ctx.results) == before:
            ctx.result(shown, "Done.")
        else:
            ctx.results[before] = (shown, ctx.results[before][1])
        if outcome is Outcome.STOP:
            break


# Which command a single-purpose address stands for (SPEC section 3).
ADDRESS_COMMANDS = {"join": "join", "subscribe": "join", "leave": "leave", "unsubscribe": "leave"}


def handle_command_mail(s: Session, cfg: Config, lst: ListConfig, site: Site, inc: Incoming,
                        suffix: str, detail: str) -> None:
    """Mail to -request, -join, -leave, -leave+TOKEN or -confirm+TOKEN: run it and answer once."""
    from listserv.store import members

    address = inc.sender
    if address is None:
        log.info("%s-%s: no sender address; ignored", lst.name, suffix)
        return
    subject = inc.msg.get("subject")
    body = first_text(parse(inc.raw))
    ctx = Context(s=s, cfg=cfg, lst=lst, site=site, now=inc.now, address=address,
                  subject=subject, body=body)
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
    if not lines:  # nothing we understood: answer with the help text alone, saying so
        run(ctx, [["help"]])
        ctx.replies[-1].ctx["unrecognised"] = True
    else:
        run(ctx, lines)
    answer(ctx, inc)


def answer(ctx: Context, inc: Incoming) -> None:
    """Send the dedicated reply alone when one command made one; else the results, then those."""
    if not may_auto_reply(inc.msg, inc.mail_from, ctx.lst, ctx.site):
        log.info("%s: no reply to %s (auto-submitted, bulk or looping mail)", ctx.lst.name, ctx.address)
        return
    send_replies(ctx, inc.msg.get("message-id").strip() or None)


def send_replies(ctx: Context, in_reply_to: str | None = None) -> None:
    """Queue the answers a run produced, within the daily cap."""
    replies = list(ctx.replies)
    own = [r for r in replies if r.to in (None, ctx.address)]
    # No results mail when there are no results (a web confirm) or one dedicated reply says it all.
    if ctx.results and not (len(own) == 1 and len(ctx.results) == 1):
        replies.insert(0, Reply("commands/results.txt", {"results": ctx.results}))
    for r in replies:
        to = r.to or ctx.address
        if not reply(ctx.s, ctx.lst, ctx.site, to, r.template, ctx.now, reply_to=r.reply_to,
                     in_reply_to=in_reply_to if to == ctx.address else None, **r.ctx):
            log.info("%s: daily reply cap reached for %s", ctx.lst.name, to)


load_commands()  # last: the command modules import the names defined above
