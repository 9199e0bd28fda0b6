"""end: stop reading commands (anything below is ignored)."""

from __future__ import annotations

from listserv.commands.registry import Context, Outcome, command


@command("end", usage="end", summary="Stop reading commands here.")
def end(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", "Stopped reading here.")
    return Outcome.STOP
