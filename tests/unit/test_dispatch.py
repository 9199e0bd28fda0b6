"""Dispatch routing as a table: which address goes to which handler, no server needed."""

from __future__ import annotations

import pytest

from listserv.dispatch import Route, route

NAMES = frozenset({"networking", "jobs.board"})
DOMAIN = "lists.example.org"


@pytest.mark.parametrize(
    ("rcpt", "expected"),
    [
        ("networking@lists.example.org", Route("networking", "post", "", "")),
        ("NETWORKING@Lists.Example.org", Route("networking", "post", "", "")),
        ("networking-owner@lists.example.org", Route("networking", "owner", "owner", "")),
        ("networking-bounces@lists.example.org", Route("networking", "bounce", "bounces", "")),
        (
            "networking-bounces+ann=example.com@lists.example.org",
            Route("networking", "bounce", "bounces", "ann=example.com"),
        ),
        ("networking-request@lists.example.org", Route("networking", "command", "request", "")),
        ("networking-join@lists.example.org", Route("networking", "command", "join", "")),
        ("networking-subscribe@lists.example.org", Route("networking", "command", "subscribe", "")),
        ("networking-leave@lists.example.org", Route("networking", "command", "leave", "")),
        ("networking-leave+abc@lists.example.org", Route("networking", "command", "leave", "abc")),
        (
            "networking-confirm+abc@lists.example.org",
            Route("networking", "command", "confirm", "abc"),
        ),
        ("jobs.board-request@lists.example.org", Route("jobs.board", "command", "request", "")),
    ],
)
def test_each_list_address_routes_to_its_handler(rcpt, expected):
    """Posts, owner mail, bounces and every command address reach the right handler."""
    assert route(rcpt, DOMAIN, NAMES) == expected


@pytest.mark.parametrize(
    "rcpt",
    [
        "nobody@lists.example.org",
        "networking@elsewhere.example.org",
        "networking-request+x@lists.example.org",  # only token addresses carry a +detail
        "networking-owner+x@lists.example.org",
        "networking-nonsense@lists.example.org",
    ],
)
def test_addresses_that_are_not_ours_have_no_route(rcpt):
    """Anything else at the domain, or at another domain, is refused (no route)."""
    assert route(rcpt, DOMAIN, NAMES) is None
