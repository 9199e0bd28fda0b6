"""4. The moderation policy as one ordered table of (rule, action), and the moderators' verbs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from listserv.config import Config, ListConfig
from listserv.dmarc import DmarcPolicies
from listserv.errors import UsageError
from listserv.notices import reply
from listserv.posting import distribute
from listserv.states import PostStatus
from listserv.store.tables import Post

ACCEPT, HOLD, REJECT, DISCARD = "accept", "hold", "reject", "discard"
STATUS = {
    ACCEPT: PostStatus.ACCEPTED,
    HOLD: PostStatus.HELD,
    REJECT: PostStatus.REJECTED,
    DISCARD: PostStatus.DISCARDED,
}


@dataclass(frozen=True)
class PostFacts:
    """What the store and the headers say about a post, gathered before deciding."""

    sender: str | None
    is_member: bool
    is_privileged: bool  # an owner or moderator
    our_list_id: bool  # already carries this list's List-Id: a loop
    duplicate: bool  # same sender, same Message-ID, within a day
    our_marker: bool = False  # already carries this list's X-BeenThere: a loop (SPEC 6)
    received: int = 0  # Received: lines, one per hop
    auto_submitted: bool = False  # Auto-Submitted other than "no" (RFC 3834): not a person
    auto_reply: bool = False  # an auto-responder's tell-tale header or subject
    own_reply_depth: int = 0  # answers to the sender's own recent posts in a row, up the thread


MAX_RECEIVED = 25  # more hops than this is a loop somewhere (SPEC 6)
MAX_OWN_REPLIES = 2  # a reply to a reply to one's own post, within the hour: an auto-responder


Rule = Callable[[PostFacts, ListConfig], bool]


def no_sender(f: PostFacts, lst: ListConfig) -> bool:
    return f.sender is None


def loop(f: PostFacts, lst: ListConfig) -> bool:
    return f.our_list_id


def been_here(f: PostFacts, lst: ListConfig) -> bool:
    return f.our_marker


def too_many_hops(f: PostFacts, lst: ListConfig) -> bool:
    return f.received > MAX_RECEIVED


def automatic(f: PostFacts, lst: ListConfig) -> bool:
    return f.auto_submitted or f.auto_reply


def answers_itself(f: PostFacts, lst: ListConfig) -> bool:
    return f.own_reply_depth >= MAX_OWN_REPLIES


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
    # Loops are held for the owners, never distributed (SPEC 6): see LOOPS.
    ("loop: the post already went through this list (X-BeenThere)", been_here, HOLD),
    ("loop: the post already carries this list's List-Id", loop, HOLD),
    (f"loop: more than {MAX_RECEIVED} Received: lines", too_many_hops, HOLD),
    ("an automatic message (Auto-Submitted or an auto-responder)", automatic, HOLD),
    (
        "loop: answers the sender's own answer to their post (an auto-responder?)",
        answers_itself,
        HOLD,
    ),
    ("duplicate Message-ID from the same sender", duplicate, DISCARD),
    ("owner or moderator", privileged, ACCEPT),
    ("open list", open_list, ACCEPT),
    ("only owners and moderators post to an announce list", announce_only, NONMEMBER),
    ("the sender is not a member", not_member, NONMEMBER),
    ("the list is moderated", moderated, HOLD),
)


# The rules above that mean "a machine wrote this": the sender gets no "held" reply.
LOOPS = frozenset({been_here, loop, too_many_hops, automatic, answers_itself})


def is_loop(facts: PostFacts, lst: ListConfig) -> bool:
    return any(rule(facts, lst) for rule in LOOPS)


def decide(facts: PostFacts, lst: ListConfig) -> tuple[str, str]:
    """(action, reason) for a post under the list's policy."""
    for reason, rule, action in MODERATION:
        if rule(facts, lst):
            return (lst.nonmember_posts if action == NONMEMBER else action), reason
    return ACCEPT, "member post"


# ---------------------------------------------------------------- what moderators do


def held_post(s: Session, post_id: int) -> Post:
    """A post waiting for approval; UsageError when there is no such held post."""
    post = s.get(Post, post_id)
    if post is None or post.status != PostStatus.HELD:
        raise UsageError(f"there is no held post {post_id}; 'listserv held' lists them")
    return post


def approve(
    s: Session, cfg: Config, post_id: int, now: datetime, dmarc_policies: DmarcPolicies | None
) -> int:
    """Release a held post to the list; returns how many copies were queued."""
    post = held_post(s, post_id)
    return distribute(s, cfg.list(post.list_name), cfg.site, post, now, dmarc_policies)


def reject(s: Session, cfg: Config, post_id: int, now: datetime) -> Post:
    """Refuse a held post and tell its sender."""
    post = held_post(s, post_id)
    lst = cfg.list(post.list_name)
    post.status = PostStatus.REJECTED
    s.add(post)
    if post.sender:
        reply(
            s,
            lst,
            cfg.site,
            post.sender,
            "member/rejected.txt",
            now,
            subject=post.subject,
            reason="a moderator declined it",
        )
    return post
