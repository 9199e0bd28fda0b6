"""digest: get the posts as one digest mail instead of one mail each."""

from __future__ import annotations

from listserv.commands import Context, Outcome, command
from listserv.commands._shared import current_member, not_member_text
from listserv.store import members


@command("digest", usage="digest", summary="Get one digest mail instead of every post.")
def digest(ctx: Context, args: list[str]) -> Outcome:
    member = current_member(ctx)
    if member is None:
        ctx.result("", not_member_text(ctx))
    elif member.delivery == "digest":
        ctx.result("", "You already get the digest.")
    else:
        members.set_delivery(ctx.s, member, "digest", ctx.now, "digest command")
        ctx.result("", "Done: from now on you get the digest instead of every post.")
    return Outcome.CONTINUE
