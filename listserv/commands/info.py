"""info: what this list is, who may post, and your own status."""

from __future__ import annotations

from listserv.commands.registry import Context, Outcome, command
from listserv.membership import Reply
from listserv.store import members

POLICY_WORDS = {
    "members": "members may post",
    "open": "anyone may post",
    "moderated": "posts are checked by a moderator first",
    "announce": "only the organisers post (announcements)",
}


@command("info", usage="info", summary="What this list is about, who may post, and your status.")
def info(ctx: Context, args: list[str]) -> Outcome:
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    ctx.result("", "I've sent you the list information in a separate message.")
    ctx.replies.append(
        Reply("commands/info.txt", {"member": member, "policy": POLICY_WORDS[ctx.lst.posting]})
    )
    return Outcome.CONTINUE
