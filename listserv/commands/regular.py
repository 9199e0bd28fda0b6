"""regular: get every post as it is sent."""

from __future__ import annotations

from listserv.commands import Context, Outcome, command
from listserv.commands._shared import switch_mode


@command("regular", usage="regular", summary="Get every post as it is sent.")
def regular(ctx: Context, args: list[str]) -> Outcome:
    switch_mode(ctx, "regular", "You already get every post.",
                "Done: from now on you get every post as it is sent.")
    return Outcome.CONTINUE
