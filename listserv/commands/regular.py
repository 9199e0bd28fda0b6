"""regular: get every post as it is sent."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command
from listserv.states import Delivery


@command("regular", usage="regular", summary="Get every post as it is sent.")
def regular(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", membership.switch_mode(ctx, Delivery.REGULAR))
    return Outcome.CONTINUE
