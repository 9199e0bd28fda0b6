"""back / rejoin / looking: "I'm looking again": every post again, bounces forgiven."""

from __future__ import annotations

from listserv.commands import Context, Outcome, command
from listserv.commands.join import join
from listserv.store import members


@command("back", aliases=("rejoin", "looking"), usage="back",
         summary="Looking again? Get every post again (from alumni or digest mode).")
def back(ctx: Context, args: list[str]) -> Outcome:
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status in ("left", "pending"):
        return join(ctx, [])  # a former member comes back through the usual confirmation
    changed = []
    if member.status == "disabled":
        members.activate(ctx.s, member, ctx.now, "re-enabled by 'back'")
        changed.append("delivery is switched on again")
    if member.delivery != "regular":
        members.set_delivery(ctx.s, member, "regular", ctx.now, "back: looking again")
        changed.append("you get every post again")
    if changed:
        ctx.result("", f"Welcome back: {' and '.join(changed)}. Good luck with the search!")
    else:
        ctx.result("", "You already get every post; nothing to change.")
    return Outcome.CONTINUE
