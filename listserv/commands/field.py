"""field [NAME | none]: set or clear your field of work; alone, list the fields (issue 13)."""

from __future__ import annotations

from listserv import membership
from listserv.commands.registry import Context, Outcome, command


@command(
    "field",
    usage="field [NAME | none]",
    summary="Set your field of work; alone, it lists the fields and yours.",
)
def field(ctx: Context, args: list[str]) -> Outcome:
    ctx.result("", membership.set_field(ctx, args))
    return Outcome.CONTINUE
