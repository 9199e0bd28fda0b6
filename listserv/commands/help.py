"""help: the list of commands, generated from the registry."""

from __future__ import annotations

from listserv.commands.registry import COMMANDS, Context, Outcome, command
from listserv.membership import Reply


@command("help", usage="help", summary="This list of commands.")
def help_(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", "I've sent you the list of commands in a separate message.")
    ctx.replies.append(
        Reply("commands/help.txt", {"commands": sorted(COMMANDS.values(), key=lambda c: c.name)})
    )
    return Outcome.CONTINUE
