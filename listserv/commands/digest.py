"""digest: get the posts as one digest mail instead of one mail each."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command
from listserv.states import Delivery


@command("digest", usage="digest", summary="Get one digest mail instead of every post.")
def digest(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", membership.switch_mode(ctx, Delivery.DIGEST))
    return Outcome.CONTINUE
