"""join / subscribe [digest|alumni]: double opt-in, or the owners' approval."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command
from listserv.states import Delivery


@command(
    "join",
    aliases=("subscribe",),
    usage="join [digest|alumni]",
    summary="Join; 'join digest' for digests, 'join alumni' for the monthly update.",
)
def join(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", membership.join(ctx, args[0] if args else Delivery.REGULAR))
    return Outcome.CONTINUE
