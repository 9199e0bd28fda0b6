"""info: what this list is, who may post, and your own status."""

from __future__ import annotations

from listserv.addresses import list_address
from listserv.commands.registry import Context, Outcome, command
from listserv.render import render_text
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
    # The information is this command's result: it goes in the one reply (SPEC 5).
    text = render_text(
        "commands/info.txt",
        lst=ctx.lst,
        member=member,
        policy=POLICY_WORDS[ctx.lst.posting],
        request=list_address(ctx.lst.name, ctx.site.domain, "request"),
        post_address=list_address(ctx.lst.name, ctx.site.domain),
    )
    ctx.result("", text.strip("\n"))
    return Outcome.CONTINUE
