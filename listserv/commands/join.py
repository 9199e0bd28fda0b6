"""join / subscribe [digest|alumni]: double opt-in, or the owners' approval."""

from __future__ import annotations

from datetime import timedelta

from listserv.commands import Context, Outcome, command
from listserv.commands._shared import ask_to_confirm
from listserv.store import members, tokens

MODES = ("regular", "digest", "alumni")


@command("join", aliases=("subscribe",), usage="join [digest|alumni]",
         summary="Join this list; add 'digest' for one mail a week, 'alumni' for the monthly update.")
def join(ctx: Context, args: list[str]) -> Outcome:
    mode = args[0].lower() if args else "regular"
    if mode not in MODES:
        ctx.result("", f"'{mode}' is not a delivery mode; use 'join', 'join digest' or 'join alumni'.")
        return Outcome.CONTINUE
    if mode == "alumni" and not ctx.lst.alumni.enabled:
        ctx.result("", "This list has no alumni mode; send 'join' or 'join digest'.")
        return Outcome.CONTINUE
    if ctx.lst.subscription == "closed":
        ctx.result("", "Sorry, this list is not taking new members by email; "
                       "please write to the list owners if you would like to join.")
        return Outcome.CONTINUE
    existing = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if existing is not None and existing.status in ("active", "disabled"):
        ctx.result("", f"You are already a member ({existing.delivery} delivery); nothing to do.")
        return Outcome.CONTINUE
    if tokens.recent_token(ctx.s, ctx.lst.name, ctx.address, "join", ctx.now - timedelta(days=1)):
        ctx.result("", "A confirmation was already sent to you today; please reply to that message.")
        return Outcome.CONTINUE
    members.upsert_member(ctx.s, ctx.lst.name, ctx.address, ctx.now, status="pending", delivery=mode)
    ask_to_confirm(ctx, ctx.address, "join", "member/confirm_join.txt", delivery=mode)
    ctx.result("", "Almost done: please confirm by replying to the confirmation message I just sent.")
    return Outcome.CONTINUE
