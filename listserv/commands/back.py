"""back / rejoin / looking: "I'm looking again": every post again, bounces forgiven."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command


@command(
    "back",
    aliases=("rejoin", "looking"),
    usage="back",
    summary="Looking again? Get every post again (from alumni or digest mode).",
)
def back(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", membership.back(ctx))
    return Outcome.CONTINUE
