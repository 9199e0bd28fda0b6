"""The small HTTP side: one-click unsubscribe (RFC 8058), confirm pages, health. No admin actions."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from listserv import membership
from listserv.config import Config
from listserv.errors import TokenError
from listserv.render import render_text
from listserv.states import MemberStatus
from listserv.store import Store, members, tokens

# Not "reply to a list message": a reply to a post goes to everyone on the list.
GONE = (
    "This link is unknown or has expired. If you still want to change your subscription, "
    "please send your request again by email, or use the unsubscribe link in a recent list message."
)
TOKEN_PATTERN = "{token:str}"
ALUMNI_NOTE = (
    "You'll get one short update a month instead of every post. To leave completely, use the "
    "unsubscribe link in any mail from the list."
)
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the format every Prometheus reads
ACTION_WORDS = {  # action: (heading, what pressing the button does, button)
    "join": (
        "Confirm your subscription",
        "Press the button to subscribe {address} to {title}.",
        "Yes, subscribe me",
    ),
    "leave": (
        "Confirm that you want to leave",
        "Press the button to unsubscribe {address} from {title}.",
        "Yes, unsubscribe me",
    ),
    "alumni": (
        "Stay in touch as alumni",
        (
            "Press the button to switch {address} to alumni mode on {title}: "
            "a short update now and then instead of every post."
        ),
        "Yes, switch me to alumni mode",
    ),
    "approve-join": (
        "Approve a new member",
        "Press the button to let {address} join {title}.",
        "Approve",
    ),
}


def one_click_body(body: bytes) -> bool:
    """Whether a POST body is RFC 8058's List-Unsubscribe=One-Click, form-encoded either way.

    >>> one_click_body(b"List-Unsubscribe=One-Click"), one_click_body(b"")
    (True, False)
    """
    if len(body) > 10_000:
        return False
    text = body.decode("latin-1")
    if parse_qs(text.strip()).get("List-Unsubscribe") == ["One-Click"]:
        return True
    return bool(_MULTIPART_ONE_CLICK.search(text))  # multipart/form-data, as some clients send


_MULTIPART_ONE_CLICK = re.compile(
    r'name="?List-Unsubscribe"?\s*\r?\n(?:[^\r\n]+\r?\n)*\r?\nOne-Click\r?\n', re.I
)


def page(
    title: str,
    *paragraphs: str,
    button: str = "",
    action: str = "",
    fields: tuple[tuple[str, str], ...] = (),
    footer: str = "",
    status: int = 200,
) -> HTMLResponse:
    html = render_text(
        "web/page.html",
        title=title,
        paragraphs=paragraphs,
        button=button,
        action=action,
        fields=fields,
        footer=footer,
    )
    return HTMLResponse(html, status_code=status)


def make_app(
    store: Store,
    config: Callable[[], Config],
    wake: Callable[[], None],
    health: Callable[[], list[str]],
    metrics: Callable[[], bytes] = lambda: b"",
) -> Starlette:
    """The HTTP side over a store and the current config; wake() tells delivery that mail was
    queued; health() names what is down (nothing: healthy); metrics() is the Prometheus text."""

    def gone() -> Response:
        return PlainTextResponse(GONE, status_code=404)

    def unsubscribe(token: str, one_click: bool) -> tuple[int, str]:
        cfg, now = config(), datetime.now(UTC)
        with store.session() as s:
            member = members.member_by_token(s, token) or members.former_member(s, token)
            lst = cfg.lists.get(member.list_name) if member else None
            if member is None or lst is None:
                return 404, ""
            if member.status == MemberStatus.LEFT:
                return 200, lst.display_title
            if not one_click:
                return 0, lst.display_title
            ctx = membership.Context(
                s=s, cfg=cfg, lst=lst, site=cfg.site, now=now, address=member.address
            )
            membership.one_click_leave(ctx, member)
            membership.send_replies(ctx)
            return 200, lst.display_title

    async def unsub(request: Request) -> Response:
        token = request.path_params["token"]
        if request.method == "GET" or not one_click_body(await request.body()):
            status, title = await asyncio.to_thread(unsubscribe, token, False)
            if status == 404:
                return gone()
            if status == 200:
                return page(f"You have left {title}", "You won't get mail from this list any more.")
            return page(
                f"Leave {title}?",
                "Press the button to stop getting mail from this list.",
                button="Unsubscribe",
                action=f"/u/{token}",
                fields=(("List-Unsubscribe", "One-Click"),),
                footer="Opening this page changes nothing until you press the button.",
            )
        status, title = await asyncio.to_thread(unsubscribe, token, True)
        wake()  # the goodbye is queued: send it now, not at the next poll
        if status == 404:
            return gone()
        return page(
            f"You have left {title}",
            "You won't get mail from this list any more.",
            "Thank you for being part of the group.",
        )

    def alumni(token: str, do_it: bool) -> tuple[int, str, str]:
        """(status, list title, what happened) for the one-step alumni offer."""
        cfg, now = config(), datetime.now(UTC)
        with store.session() as s:
            member = members.member_by_token(s, token)
            lst = cfg.lists.get(member.list_name) if member else None
            if member is None or lst is None or not lst.alumni.enabled:
                return 404, "", ""
            if not do_it:
                return 0, lst.display_title, member.address
            ctx = membership.Context(
                s=s, cfg=cfg, lst=lst, site=cfg.site, now=now, address=member.address
            )
            result = membership.stay_as_alumni(ctx, member)
            membership.send_replies(ctx)
            return 200, lst.display_title, result

    async def alumni_page(request: Request) -> Response:
        token = request.path_params["token"]
        do_it = request.method == "POST"
        status, title, detail = await asyncio.to_thread(alumni, token, do_it)
        if status == 404:
            return gone()
        if do_it:
            wake()  # the alumni welcome is queued
            return page(f"Alumni of {title}", detail, ALUMNI_NOTE)
        heading, sentence, button = ACTION_WORDS["alumni"]
        return page(
            heading,
            sentence.format(address=detail, title=title),
            button=button,
            action=f"/a/{token}",
            footer="Opening this page changes nothing until you press the button.",
        )

    def confirm(token: str, do_it: bool) -> tuple[int, str, str, str]:
        cfg, now = config(), datetime.now(UTC)
        with store.session() as s:
            tok = tokens.live_token(s, token, now)
            lst = cfg.lists.get(tok.list_name) if tok else None
            if tok is None or lst is None:
                return 404, "", "", ""
            if not do_it:
                return 0, lst.display_title, tok.action, tok.address
            ctx = membership.Context(
                s=s, cfg=cfg, lst=lst, site=cfg.site, now=now, address=tok.address
            )
            try:
                result = membership.apply_token(ctx, token)
            except TokenError as exc:
                return 200, lst.display_title, tok.action, str(exc)
            membership.send_replies(ctx)
            return 200, lst.display_title, tok.action, result

    async def confirm_page(request: Request) -> Response:
        token = request.path_params["token"]
        do_it = request.method == "POST"
        status, title, action, detail = await asyncio.to_thread(confirm, token, do_it)
        if do_it:
            wake()  # a welcome or goodbye may be queued
        if status == 404:
            return gone()
        if do_it:
            return page(title, detail)
        heading, sentence, button = ACTION_WORDS.get(
            action, ("Confirm", "Press the button to confirm.", "Confirm")
        )
        return page(
            heading,
            sentence.format(address=detail, title=title),
            button=button,
            action=f"/c/{token}",
            footer="Opening this page changes nothing until you press the button.",
        )

    async def healthz(request: Request) -> Response:
        problems = await asyncio.to_thread(health)
        if not problems:
            return PlainTextResponse("ok\n")
        return PlainTextResponse("; ".join(problems) + "\n", status_code=503)

    async def metrics_page(request: Request) -> Response:
        body = await asyncio.to_thread(metrics)
        return Response(body, media_type=METRICS_TYPE)

    return Starlette(
        routes=[
            Route(f"/u/{TOKEN_PATTERN}", unsub, methods=["GET", "POST"]),
            Route(f"/c/{TOKEN_PATTERN}", confirm_page, methods=["GET", "POST"]),
            Route(f"/a/{TOKEN_PATTERN}", alumni_page, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ]
    )
