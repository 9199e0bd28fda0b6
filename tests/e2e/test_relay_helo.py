"""The name listserv greets its relay with (issue 11: it said helo=localhost)."""

from __future__ import annotations

from aiosmtpd.controller import Controller

from listserv.delivery import make_relay
from tests.conftest import free_port, make_config


class Greeted:
    def __init__(self) -> None:
        self.names: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.names.append(session.host_name)
        return "250 OK"


async def _greeting(tmp_path, server_extra: str = "") -> str:  # type: ignore[no-untyped-def]
    handler, port = Greeted(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        cfg = make_config(tmp_path, relay=f"smtp://127.0.0.1:{port}", server_extra=server_extra)
        relay = make_relay(cfg)
        await relay.send(
            "bounces@lists.example.org", "ann@example.com", b"Subject: x\r\n\r\nx\r\n", 1
        )
        await relay.close()
    finally:
        controller.stop()
    return handler.names[0]


async def test_relay_is_greeted_with_the_list_domain(tmp_path):
    """Without helo_name, EHLO names the list domain, not localhost."""
    assert await _greeting(tmp_path) == "lists.example.org"


async def test_helo_name_setting_overrides_the_greeting(tmp_path):
    """[server] helo_name sets the EHLO name."""
    assert await _greeting(tmp_path, 'helo_name = "mx1.example.org"\n') == "mx1.example.org"
