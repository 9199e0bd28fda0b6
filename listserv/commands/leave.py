"""leave / unsubscribe [reason]: the retention rules of SPEC section 5."""

from __future__ import annotations

from listserv import retention
from listserv.commands import Context, Outcome, command
from listserv.commands._shared import ask_to_confirm, goodbye, not_member_text, switch_to_alumni
from listserv.store import members, tokens


@command("leave", aliases=("unsubscribe",), usage="leave [reason]",
         summary="Leave this list (if you found work, you can stay as alumni instead).")
def leave(ctx: Context, args: list[str]) -> Outcome:
    if ctx.via_token is not None and ctx.via_token.status == "left":  # a second click: one goodbye is enough
        ctx.result("", "You had already left the list; there is nothing more to do.")
        return Outcome.STOP
    if ctx.via_token is not None:  # the member's own token: at once, no questions (rule 3, 4)
        goodbye(ctx, ctx.via_token, "one-step leave with the member's own token")
        ctx.result("", "You have left the list.")
        return Outcome.STOP
    member = members.get_member(ctx.s, ctx.lst.name, ctx.address)
    if member is None or member.status == "left":
        ctx.result("", not_member_text(ctx))
        return Outcome.CONTINUE
    if member.status == "pending":
        members.remove(ctx.s, member, ctx.now, "left before confirming")
        ctx.result("", "Your pending subscription is cancelled.")
        return Outcome.STOP
    alumni = ctx.lst.alumni
    verdict = retention.classify_leave(ctx.subject, ctx.body, alumni.extra_job_phrases)
    if verdict.found_work and member.delivery != "alumni":  # a hiring signal for the alumni pulse, whatever happens next
        members.log_event(ctx.s, ctx.lst.name, member.address, "job-leave", verdict.phrase or "", ctx.now)
    job_leave = verdict.found_work and alumni.enabled and member.delivery != "alumni"
    if job_leave and alumni.on_job_leave == "alumni":  # rule 1
        switch_to_alumni(ctx, member, f"found work: {verdict.phrase}")
        ctx.result("", "Congratulations! You are now in alumni mode; see my other note.")
        return Outcome.STOP
    if job_leave and alumni.on_job_leave == "ask":  # rule 2
        alumni_token = tokens.create_token(ctx.s, ctx.lst.name, member.address, "alumni", ctx.now,
                                           ctx.cfg.server.token_days).token
        ask_to_confirm(ctx, member.address, "leave", "member/job_ask.txt",
                       reason=f"found work: {verdict.phrase}",
                       alumni_url=f"{ctx.site.base_url}/c/{alumni_token}")
        ctx.result("", "Congratulations! Choose how you would like to go on; see my other note.")
        return Outcome.STOP
    ask_to_confirm(ctx, member.address, "leave", "member/confirm_leave.txt",  # rules 3 and 4
                   reason=_reason(ctx))
    ctx.result("", "Please confirm by replying to the message I just sent.")
    return Outcome.STOP


def _reason(ctx: Context) -> str:
    cleaned = retention.clean_text(ctx.subject, ctx.body)
    return cleaned[:300] or "asked to leave"
