"""alumni: switch to the low-volume alumni update (for members who found work)."""

from __future__ import annotations

from listserv.commands import Context, Outcome, command
from listserv.commands._shared import current_member, not_member_text, switch_to_alumni


@command("alumni", usage="alumni", summary="Found work? Stay in touch with a low-volume monthly update.")
def alumni(ctx: Context, args: list[str]) -> Outcome:
    member = current_member(ctx)
    if member is None:
        ctx.result("", not_member_text(ctx))
    elif not ctx.lst.alumni.enabled:
        ctx.result("", "This list has no alumni mode; you can use 'digest' for fewer mails.")
    elif member.delivery == "alumni":
        ctx.result("", "You are already in alumni mode.")
    else:
        switch_to_alumni(ctx, member, "alumni command", found_work=False)
        ctx.result("", "Done: you are now in alumni mode.")
    return Outcome.CONTINUE
