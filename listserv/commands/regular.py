"""regular: get every post as it is sent."""

from __future__ import annotations

from listserv.commands import Context, Outcome, command
from listserv.commands._shared import current_member, not_member_text
from listserv.store import members


@command("regular", usage="regular", summary="Get every post as it is sent.")
def regular(ctx: Context, args: list[str]) -> Outcome:
    member = current_member(ctx)
    if member is None:
        ctx.result("", not_member_text(ctx))
    elif member.delivery == "regular":
        ctx.result("", "You already get every post.")
    else:
        members.set_delivery(ctx.s, member, "regular", ctx.now, "regular command")
        ctx.result("", "Done: from now on you get every post as it is sent.")
    return Outcome.CONTINUE
