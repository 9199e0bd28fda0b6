"""confirm TOKEN: complete a pending join, leave, alumni switch or owner approval."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command


@command(
    "confirm",
    usage="confirm TOKEN",
    summary="Confirm a request; replying to my message does the same.",
    listed=False,  # a reply to the confirmation does this; help lists what a member types
)
def confirm(ctx: Context, args: list[str]) -> Outcome:
    if not args:
        ctx.result("", "Please add the code from the message you are confirming: 'confirm CODE'.")
    else:
        ctx.result("", membership.apply_token(ctx, args[0]))
    return Outcome.CONTINUE
