"""Steps several commands share: confirmation tokens, links, welcome and goodbye."""

from __future__ import annotations

from listserv.addresses import list_address
from listserv.commands import Context, Reply
from listserv.store import members, tokens
from listserv.store.tables import Member

DELIVERY_WORDS = {"regular": "every post as it is sent", "digest": "a digest of the posts",
                  "alumni": "the low-volume alumni update"}


def links(ctx: Context, member: Member) -> dict[str, str]:
    """The member's one-step ways out, for templates."""
    return {
        "unsubscribe_url": f"{ctx.site.base_url}/u/{member.token}",
        "leave_address": list_address(ctx.lst.name, ctx.site.domain, "leave", member.token),
    }


def ask_to_confirm(ctx: Context, address: str, action: str, template: str, **payload: object) -> str:
    """Make a token for action and queue the mail asking to confirm it; returns the token."""
    tok = tokens.create_token(ctx.s, ctx.lst.name, address, action, ctx.now,
                              ctx.cfg.server.token_days, payload=dict(payload))
    confirm_address = list_address(ctx.lst.name, ctx.site.domain, "confirm", tok.token)
    ctx.replies.append(Reply(template, {"token": tok.token, "confirm_address": confirm_address,
                                        "confirm_url": f"{ctx.site.base_url}/c/{tok.token}",
                                        "days": ctx.cfg.server.token_days, **payload},
                             reply_to=confirm_address))
    return tok.token


def welcome(ctx: Context, member: Member) -> None:
    ctx.replies.append(Reply("member/welcome.txt", {"member": member, **links(ctx, member),
                                                    "delivery_words": DELIVERY_WORDS[member.delivery]},
                             to=member.address))


def goodbye(ctx: Context, member: Member, reason: str) -> None:
    members.remove(ctx.s, member, ctx.now, reason)
    ctx.replies.append(Reply("member/goodbye.txt", {"member": member}))


def switch_to_alumni(ctx: Context, member: Member, reason: str, found_work: bool = True) -> None:
    """Alumni mode at once, with a note (congratulations when they found work) that keeps the
    full leave one step away."""
    members.set_delivery(ctx.s, member, "alumni", ctx.now, reason)
    ctx.replies.append(Reply("member/alumni_welcome.txt", {"member": member, "found_work": found_work,
                                                           **links(ctx, member)}))


def current_member(ctx: Context) -> Member | None:
    """The sender's membership when it is live (active or disabled by bounces)."""
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status not in ("active", "disabled"):
        return None
    return member


def not_member_text(ctx: Context) -> str:
    return (f"{ctx.address} is not subscribed to {list_address(ctx.lst.name, ctx.site.domain)}; "
            f"send 'join' to {list_address(ctx.lst.name, ctx.site.domain, 'request')} to join.")


def switch_mode(ctx: Context, mode: str, already: str, done: str) -> None:
    """The digest/regular commands: switch a live member's delivery mode, saying what happened."""
    member = current_member(ctx)
    if member is None:
        ctx.result("", not_member_text(ctx))
    elif member.delivery == mode:
        ctx.result("", already)
    else:
        members.set_delivery(ctx.s, member, mode, ctx.now, f"{mode} command")
        ctx.result("", done)
