"""The moderation policy as one ordered table of (rule, action); the first rule that fires decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from listserv.config import ListConfig

ACCEPT, HOLD, REJECT, DISCARD = "accept", "hold", "reject", "discard"


@dataclass(frozen=True)
class PostFacts:
    """What the store and the headers say about a post, gathered before deciding."""

    sender: str | None
    is_member: bool
    is_privileged: bool  # an owner or moderator
    our_list_id: bool  # already carries this list's List-Id: a loop
    duplicate: bool  # same sender, same Message-ID, within a day


Rule = Callable[[PostFacts, ListConfig], bool]


def no_sender(f: PostFacts, lst: ListConfig) -> bool:
    return f.sender is None


def loop(f: PostFacts, lst: ListConfig) -> bool:
    return f.our_list_id


def duplicate(f: PostFacts, lst: ListConfig) -> bool:
    return f.duplicate


def privileged(f: PostFacts, lst: ListConfig) -> bool:
    return f.is_privileged


def open_list(f: PostFacts, lst: ListConfig) -> bool:
    return lst.posting == "open"


def announce_only(f: PostFacts, lst: ListConfig) -> bool:
    return lst.posting == "announce"


def not_member(f: PostFacts, lst: ListConfig) -> bool:
    return not f.is_member


def moderated(f: PostFacts, lst: ListConfig) -> bool:
    return lst.posting == "moderated"


NONMEMBER = "nonmember"  # resolved to the list's nonmember_posts action

# Read top to bottom: the first rule that fires decides; no rule firing means accept.
MODERATION: tuple[tuple[str, Rule, str], ...] = (
    ("no sender", no_sender, DISCARD),
    ("loop: the post already carries this list's List-Id", loop, DISCARD),
    ("duplicate Message-ID from the same sender", duplicate, DISCARD),
    ("owner or moderator", privileged, ACCEPT),
    ("open list", open_list, ACCEPT),
    ("only owners and moderators post to an announce list", announce_only, NONMEMBER),
    ("the sender is not a member", not_member, NONMEMBER),
    ("the list is moderated", moderated, HOLD),
)


def decide(facts: PostFacts, lst: ListConfig) -> tuple[str, str]:
    """(action, reason) for a post under the list's policy."""
    for reason, rule, action in MODERATION:
        if rule(facts, lst):
            return (lst.nonmember_posts if action == NONMEMBER else action), reason
    return ACCEPT, "member post"
