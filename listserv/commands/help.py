"""help: the list of commands a member can use, generated from the registry."""

from __future__ import annotations

from listserv.addresses import list_address
from listserv.commands.registry import COMMANDS, Command, Context, Outcome, command
from listserv.render import render_text


def listed_commands() -> list[Command]:
    """The commands help shows: what a member types (not 'confirm TOKEN', which replies do)."""
    return sorted((c for c in COMMANDS.values() if c.listed), key=lambda c: c.name)


@command("help", usage="help", summary="This list of commands.")
def help_(ctx: Context, args: list[str]) -> Outcome:
    # The command list is this command's result: it goes in the one reply (SPEC 5).
    text = render_text(
        "commands/help.txt",
        lst=ctx.lst,
        commands=listed_commands(),
        request=list_address(ctx.lst.name, ctx.site.domain, "request"),
        post_address=list_address(ctx.lst.name, ctx.site.domain),
    )
    ctx.result("", text.strip("\n"))
    return Outcome.CONTINUE
