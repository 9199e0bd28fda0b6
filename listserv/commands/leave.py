"""leave / unsubscribe [reason]: the retention rules of SPEC section 5."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command


@command(
    "leave",
    aliases=("unsubscribe",),
    usage="leave [reason]",
    summary="Leave this list (if you found work, you can stay as alumni instead).",
)
def leave(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", membership.leave(ctx, ctx.subject, ctx.body, ctx.via_token))
    return Outcome.STOP
