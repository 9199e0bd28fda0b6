"""digest: get the posts as one digest mail instead of one mail each."""

from __future__ import annotations

from listserv.commands import Context, Outcome, command
from listserv.commands._shared import switch_mode


@command("digest", usage="digest", summary="Get one digest mail instead of every post.")
def digest(ctx: Context, args: list[str]) -> Outcome:
    switch_mode(ctx, "digest", "You already get the digest.",
                "Done: from now on you get the digest instead of every post.")
    return Outcome.CONTINUE
