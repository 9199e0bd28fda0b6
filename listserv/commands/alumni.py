"""alumni: switch to the low-volume alumni update (for members who found work)."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command


@command(
    "alumni", usage="alumni", summary="Found work? Stay in touch with a low-volume monthly update."
)
def alumni(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", membership.choose_alumni(ctx))
    return Outcome.CONTINUE
