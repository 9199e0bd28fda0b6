"""Replies and notices: loop-safe, capped per address per day, queued durably like any copy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage

from sqlmodel import Session

from listserv.addresses import display, list_address
from listserv.config import ListConfig, Site
from listserv.headers import carries_list_id, carries_loop_marker, list_id
from listserv.message import RawMessage
from listserv.render import render_reply
from listserv.store import outbound, tokens

BULK_PRECEDENCE = {"bulk", "junk", "list"}


def may_auto_reply(msg: RawMessage, mail_from: str, lst: ListConfig, site: Site) -> bool:
    """False for mail that must never get an automatic answer (SPEC 5: auto-replies never loop)."""
    if not mail_from or mail_from == "<>":
        return False
    if mail_from.lower().startswith(("mailer-daemon@", "postmaster@")):
        return False
    auto = msg.get("auto-submitted").strip().lower()
    if auto and auto != "no":
        return False
    if msg.get("precedence").strip().lower() in BULK_PRECEDENCE:
        return False
    if msg.has("x-autoreply") or msg.has("x-autorespond"):
        return False
    return not (carries_list_id(msg, lst, site) or carries_loop_marker(msg, lst, site))


def list_from(lst: ListConfig, site: Site, suffix: str = "request") -> str:
    """'Title <name-request@domain>' for mail the list itself sends."""
    return display(lst.display_title, list_address(lst.name, site.domain, suffix))


def queue_message(
    s: Session,
    lst_name: str,
    msg: EmailMessage,
    recipients: Sequence[str],
    now: datetime,
    kind: str = "notice",
) -> int:
    """Store a built message and queue one copy per recipient; returns the outbound id."""
    out = outbound.add_outbound(s, lst_name, kind, msg.as_bytes(), now)
    assert out.id is not None
    outbound.queue_to_addresses(s, out.id, [(r, "", None) for r in recipients], now)
    return out.id


def notice(
    s: Session,
    lst: ListConfig,
    site: Site,
    to: str | Sequence[str],
    template: str,
    now: datetime,
    *,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    **ctx: object,
) -> None:
    """Render a template and queue it to one address or several (owners): no cap, no loop check."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        return
    msg = render_reply(
        template,
        sender=list_from(lst, site),
        to=", ".join(recipients),
        domain=site.domain,
        reply_to=reply_to,
        in_reply_to=in_reply_to,
        lst=lst,
        site=site,
        request=list_address(lst.name, site.domain, "request"),
        post_address=list_address(lst.name, site.domain),
        **ctx,
    )
    msg["List-Id"] = list_id(lst, site.domain)
    queue_message(s, lst.name, msg, recipients, now)


def reply(
    s: Session, lst: ListConfig, site: Site, to: str, template: str, now: datetime, **kw: object
) -> bool:
    """An automatic answer to a member; False when the daily cap for that address is spent."""
    if not tokens.take_reply_slot(s, to, now.date(), lst.max_replies_per_day):
        return False
    notice(s, lst, site, to, template, now, **kw)  # type: ignore[arg-type]
    return True
