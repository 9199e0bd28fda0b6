"""confirm TOKEN: complete a pending join, leave, alumni switch or owner approval."""

from __future__ import annotations

import json

from listserv.addresses import list_address
from listserv.commands import Context, Outcome, command
from listserv.commands._shared import goodbye, switch_to_alumni, welcome
from listserv.notices import notice
from listserv.store import members, tokens
from listserv.store.tables import Token


@command("confirm", usage="confirm TOKEN", summary="Confirm a request; replying to my message does the same.")
def confirm(ctx: Context, args: list[str]) -> Outcome:
    if not args:
        ctx.result("", "Please add the code from the message you are confirming: 'confirm CODE'.")
        return Outcome.CONTINUE
    ctx.result("", apply_token(ctx, args[0]))
    return Outcome.CONTINUE


def apply_token(ctx: Context, token: str) -> str:
    """Spend a live token and do what it was made for; returns the result sentence."""
    tok = tokens.live_token(ctx.s, token, ctx.now)
    if tok is None or tok.list_name != ctx.lst.name or not tokens.use_token(ctx.s, tok.token, ctx.now):
        return ("That confirmation code is unknown, already used or expired; "
                "please send your request again.")
    if tok.action != "approve-join":  # an approving owner gets the result; the joiner a welcome
        ctx.address = tok.address
    return ACTIONS[tok.action](ctx, tok)


def _join(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None:
        return "That request was withdrawn; send 'join' to start again."
    if member.status in ("active", "disabled"):
        return "You are already a member; nothing more to do."
    if ctx.lst.subscription == "approve":
        ask_owners(ctx, tok.address)
        return "Thank you for confirming. The list owners will look at your request soon."
    members.activate(ctx.s, member, ctx.now, "confirmed by the member")
    welcome(ctx, member)
    return "Welcome! You are now a member."


def ask_owners(ctx: Context, address: str) -> None:
    tok = tokens.create_token(ctx.s, ctx.lst.name, address, "approve-join", ctx.now,
                              ctx.cfg.server.token_days)
    confirm_address = list_address(ctx.lst.name, ctx.site.domain, "confirm", tok.token)
    notice(ctx.s, ctx.lst, ctx.site, ctx.lst.owners, "admin/approve_join.txt", ctx.now,
           reply_to=confirm_address, address=address, confirm_address=confirm_address,
           confirm_url=f"{ctx.site.base_url}/c/{tok.token}")


def _approve_join(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status != "pending":
        return f"{tok.address} is no longer waiting to join."
    members.activate(ctx.s, member, ctx.now, "approved by an owner")
    welcome(ctx, member)
    return f"{member.address} is now a member."


def _leave(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status == "left":
        return "You had already left the list."
    reason = json.loads(tok.payload or "{}").get("reason", "confirmed leave")
    goodbye(ctx, member, reason)
    return "You have left the list."


def _alumni(ctx: Context, tok: Token) -> str:
    member = members.get_member(ctx.s, ctx.lst.name, tok.address)
    if member is None or member.status not in ("active", "disabled"):
        return "You are no longer a member, so there is nothing to switch."
    switch_to_alumni(ctx, member, "chose alumni mode after finding work")
    return "You are now in alumni mode."


ACTIONS = {"join": _join, "approve-join": _approve_join, "leave": _leave, "alumni": _alumni}
