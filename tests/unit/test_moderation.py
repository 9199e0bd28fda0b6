"""The moderation table, read as a spec: facts and a list's policy in, an action out."""

from __future__ import annotations

import pytest

from listserv.config import ListConfig
from listserv.moderation import ACCEPT, DISCARD, HOLD, REJECT, PostFacts, decide

MEMBER = PostFacts("ann@example.com", True, False, False, False)
STRANGER = PostFacts("eve@example.net", False, False, False, False)
OWNER = PostFacts("owner@example.org", False, True, False, False)
NO_SENDER = PostFacts(None, False, False, False, False)
LOOP = PostFacts("ann@example.com", True, False, True, False)
DUPLICATE = PostFacts("ann@example.com", True, False, False, True)
MARKED = PostFacts("owner@example.org", True, True, False, False, our_marker=True)
HOPS = PostFacts("owner@example.org", True, True, False, False, received=26)
AUTO = PostFacts("owner@example.org", True, True, False, False, auto_submitted=True)
RESPONDER = PostFacts("ann@example.com", True, False, False, False, auto_reply=True)
ECHO = PostFacts("ann@example.com", True, False, False, False, own_reply_depth=2)


def policy(**kw: str) -> ListConfig:
    return ListConfig(name="networking", **kw)


@pytest.mark.parametrize(
    ("facts", "lst", "action"),
    [
        (MEMBER, policy(), ACCEPT),
        (STRANGER, policy(), HOLD),
        (STRANGER, policy(nonmember_posts="reject"), REJECT),
        (STRANGER, policy(nonmember_posts="discard"), DISCARD),
        (STRANGER, policy(posting="open"), ACCEPT),
        (MEMBER, policy(posting="moderated"), HOLD),
        (OWNER, policy(posting="moderated"), ACCEPT),
        (MEMBER, policy(posting="announce"), HOLD),
        (MEMBER, policy(posting="announce", nonmember_posts="reject"), REJECT),
        (OWNER, policy(posting="announce"), ACCEPT),
        (NO_SENDER, policy(posting="open"), DISCARD),
        (LOOP, policy(posting="open"), HOLD),
        (MARKED, policy(posting="open"), HOLD),
        (HOPS, policy(posting="open"), HOLD),
        (PostFacts("ann@example.com", True, False, False, False, received=25), policy(), ACCEPT),
        (AUTO, policy(posting="open"), HOLD),
        (RESPONDER, policy(), HOLD),
        (ECHO, policy(), HOLD),
        (
            PostFacts("ann@example.com", True, False, False, False, own_reply_depth=1),
            policy(),
            ACCEPT,
        ),
        (DUPLICATE, policy(), DISCARD),
        (PostFacts("owner@example.org", False, True, True, False), policy(), HOLD),
    ],
)
def test_moderation_table_decides_by_the_first_rule_that_fires(facts, lst, action):
    """Read top to bottom: loops, duplicates and sender-less mail go before privilege or policy."""
    assert decide(facts, lst)[0] == action


def test_every_decision_says_why():
    """The reason is a sentence for the owners' notice, never empty."""
    for facts in (MEMBER, STRANGER, OWNER, NO_SENDER, LOOP, DUPLICATE):
        assert decide(facts, policy(posting="moderated"))[1]
