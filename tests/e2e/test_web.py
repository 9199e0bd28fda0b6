"""The HTTP side (SPEC 9): one-click unsubscribe, confirm pages, health; GET changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from listserv.server import Server
from listserv.store import members, tokens
from listserv.store.tables import Member, Token
from tests.conftest import add_members, wait_for

ANN = "ann@example.com"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
async def web(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the running server's embedded uvicorn."""
    await wait_for(lambda: server.http.started, what="http server started")
    port = server.http.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        yield client


def member(srv: Server, address: str = ANN) -> Member:
    with srv.store.session() as s:
        found = members.get_member(s, "networking", address)
    assert found is not None
    return found


def make_token(srv: Server, action: str, expires_in: timedelta = timedelta(days=7)) -> str:
    """A confirmation token for Ann, as a command would make it."""
    now = datetime.now(UTC)
    with srv.store.session() as s:
        tok = tokens.create_token(s, "networking", ANN, action, now, 7)
        tok.expires_at = now + expires_in
        return tok.token


async def test_one_click_post_unsubscribes_at_once(server, sink, web):
    """POST /u/TOKEN with List-Unsubscribe=One-Click removes the member at once, 200 (RFC 8058)."""
    add_members(server, ANN)
    resp = await web.post(f"/u/{member(server).token}", data=ONE_CLICK)
    assert resp.status_code == 200
    m = member(server)
    assert m.status == "left" and m.left_reason == "one-click unsubscribe"
    await wait_for(lambda: sink.to(ANN), what="goodbye")
    assert sink.to(ANN)[0].msg["Subject"].startswith("You have left")


async def test_get_unsubscribe_page_shows_a_button_and_changes_nothing(server, sink, web):
    """GET /u/TOKEN shows a page whose button posts the one-click form; the member stays."""
    add_members(server, ANN)
    token = member(server).token
    resp = await web.get(f"/u/{token}")
    assert resp.status_code == 200
    assert 'method="post"' in resp.text and f'action="/u/{token}"' in resp.text
    assert 'name="List-Unsubscribe" value="One-Click"' in resp.text and "<button" in resp.text
    assert member(server).status == "active"


async def test_unsubscribe_twice_is_still_200(server, web):
    """A second one-click POST (mail clients retry) is answered 200 and changes nothing more."""
    add_members(server, ANN)
    token = member(server).token
    assert (await web.post(f"/u/{token}", data=ONE_CLICK)).status_code == 200
    assert (await web.post(f"/u/{token}", data=ONE_CLICK)).status_code == 200
    assert member(server).status == "left"


@pytest.mark.parametrize("path", ["/u/{unknown}", "/c/{unknown}", "/c/{expired}", "/c/{used}"])
async def test_unknown_or_expired_token_is_404_with_a_plain_sentence(server, web, path):
    """Unknown, expired or spent tokens answer 404 with a sentence a person can act on."""
    add_members(server, ANN)
    expired = make_token(server, "leave", expires_in=timedelta(minutes=-1))
    used = make_token(server, "leave")
    with server.store.session() as s:
        s.get(Token, used).used_at = datetime.now(UTC)
    url = path.format(unknown="0" * 40, expired=expired, used=used)
    for resp in (await web.get(url), await web.post(url, data=ONE_CLICK)):
        assert resp.status_code == 404
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.text.startswith("This link is unknown or has expired.")
    assert member(server).status == "active"


async def test_healthz_is_200_when_running(server, web):
    """/healthz answers 200 while the store and scheduler are up."""
    resp = await web.get("/healthz")
    assert resp.status_code == 200 and resp.text.strip() == "ok"


async def test_get_confirm_page_shows_button_and_post_confirms(server, sink, web):
    """GET /c/TOKEN shows what the button will do and changes nothing; POST does it."""
    add_members(server, ANN)
    token = make_token(server, "leave")
    page = await web.get(f"/c/{token}")
    assert page.status_code == 200
    assert "unsubscribe ann@example.com from Tri-County Job Seekers Networking" in page.text
    assert f'action="/c/{token}"' in page.text
    assert member(server).status == "active"
    done = await web.post(f"/c/{token}")
    assert done.status_code == 200 and "You have left the list." in done.text
    assert member(server).status == "left"
    await wait_for(lambda: sink.to(ANN), what="goodbye")
    assert (await web.post(f"/c/{token}")).status_code == 404, "a token works once"


async def test_page_escapes_html_in_addresses(server, web):
    """Text put into a page is HTML-escaped."""
    with server.store.session() as s:
        tok = tokens.create_token(
            s, "networking", '"<b>x</b>"@example.com', "join", datetime.now(UTC), 7
        )
    page = await web.get(f"/c/{tok.token}")
    assert "<b>x</b>" not in page.text and "&lt;b&gt;" in page.text


@pytest.mark.parametrize("body", [b"", b"unsubscribe=yes", b"List-Unsubscribe=Maybe"])
async def test_post_without_the_one_click_body_shows_the_button_and_changes_nothing(
    server, web, body
):
    """POST /u/TOKEN without List-Unsubscribe=One-Click (a link scanner) is the button page."""
    add_members(server, ANN)
    token = member(server).token
    resp = await web.post(
        f"/u/{token}", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert resp.status_code == 200 and "<button" in resp.text
    assert member(server).status == "active"


async def test_one_click_post_as_multipart_form_data_unsubscribes(server, web):
    """RFC 8058 allows multipart/form-data too; some mail providers send it."""
    add_members(server, ANN)
    resp = await web.post(
        f"/u/{member(server).token}", files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert resp.status_code == 200
    assert member(server).status == "left"


async def test_old_unsubscribe_link_never_removes_a_re_added_member(server, sink, web):
    """The token changes at a leave: after an admin re-add, the old link is dead (404)."""
    add_members(server, ANN)
    old = member(server).token
    assert (await web.post(f"/u/{old}", data=ONE_CLICK)).status_code == 200
    new = member(server).token
    assert new != old
    add_members(server, ANN)  # an organiser adds her back
    assert (await web.post(f"/u/{old}", data=ONE_CLICK)).status_code == 404
    assert member(server).status == "active" and member(server).token == new
