"""The email command registry: each command module registers itself with @command."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from listserv import membership
from listserv.store.tables import Member


class Outcome(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"


@dataclass
class Context(membership.Context):
    """What a command sees: the membership context, the mail it came in, and its results."""

    subject: str = ""  # as received; kept apart from the body so the job-found classifier
    body: str = ""  # can drop a "Re:" subject and quoted text (SPEC 5, rule 1)
    via_token: Member | None = None  # set when the mail came through the member's own token
    results: list[tuple[str, str]] = field(default_factory=list)

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
    listed: bool = True  # shown by 'help'; False for what only a reply uses ('confirm TOKEN')


COMMANDS: dict[str, Command] = {}
_WORDS: dict[str, Command] = {}


def command(
    name: str, *, usage: str, summary: str, aliases: tuple[str, ...] = (), listed: bool = True
) -> Callable[[Handler], Handler]:
    """Register an email command; a name or alias may be taken only once."""

    def register(fn: Handler) -> Handler:
        cmd = Command(name, usage, summary, aliases, fn, listed)
        for word in (name, *aliases):
            if word in _WORDS:
                raise ValueError(f"email command {word!r} is registered twice")
            _WORDS[word] = cmd
        COMMANDS[name] = cmd
        return fn

    return register


def lookup(word: str) -> Command | None:
    return _WORDS.get(word.lower())
