"""1. The aiosmtpd handler: route at RCPT TO, check and store at DATA, answer 250 only after the
commit (the inbound Writer group-commits concurrent messages)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from listserv import limits
from listserv.addresses import is_postmaster, is_valid_address, split_recipient
from listserv.config import Config

log = logging.getLogger("listserv.smtp")

MAX_RECIPIENTS = 100


class Handler:
    """aiosmtpd hooks; everything past storing the message happens in the inbound worker."""

    def __init__(
        self,
        config: Callable[[], Config],
        save: Callable[[str, Sequence[str], bytes], Awaitable[int]],
    ) -> None:
        self.config = config  # a callable, so a reload takes effect for the next message
        self.save = save  # durable when it returns (inbound.Writer.save)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        cfg = self.config()
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients; send the rest in another transaction"
        if is_postmaster(address, cfg.server.domain):  # SPEC 3, RFC 5321 4.5.1
            envelope.rcpt_tos.append(f"postmaster@{cfg.server.domain}")
            return "250 2.1.5 OK"
        if not is_valid_address(address):
            return "553 5.1.3 That is not a valid address"
        if address.rpartition("@")[2].lower() != cfg.server.domain:
            return "550 5.7.1 Relaying denied: this server only accepts mail for its own lists"
        if split_recipient(address, cfg.server.domain, frozenset(cfg.lists)) is None:
            return "550 5.1.1 No such list or address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        rcpts = list(envelope.rcpt_tos)
        s = self.config().server
        bounds = limits.Limits(
            s.max_header_bytes, s.max_header_fields, s.max_mime_depth, s.max_mime_parts
        )
        # A big message is scanned off the event loop, so it cannot hold up other sessions.
        refused = (
            limits.check(raw, bounds)
            if len(raw) < 256 * 1024
            else await asyncio.to_thread(limits.check, raw, bounds)
        )
        if refused:
            log.info("refused a message from %s: %s", envelope.mail_from, refused)
            return self._answer(server, rcpts, refused)
        try:
            await self.save(envelope.mail_from or "", rcpts, raw)
        except Exception:  # noqa: BLE001 - any storage failure means "try again later"
            log.exception("could not store a message from %s", envelope.mail_from)
            return self._answer(
                server, rcpts, "451 4.3.0 Temporary storage failure, please try again later"
            )
        return self._answer(server, rcpts, "250 2.0.0 Message accepted")

    @staticmethod
    def _answer(server: SMTP, rcpts: list[str], status: str) -> str:
        """LMTP answers once per recipient (RFC 2033); SMTP once per message."""
        if isinstance(server, LMTP):
            return "\r\n".join([status] * len(rcpts))
        return status

    async def handle_exception(self, error: Exception) -> str:
        log.exception("unexpected error in the SMTP session", exc_info=error)
        return "451 4.3.0 Temporary failure, please try again later"


def protocol_factory(cfg: Config, handler: Handler) -> Callable[[], SMTP]:
    """A factory for asyncio.create_server: SMTP or LMTP per config."""
    base = LMTP if cfg.server.protocol == "lmtp" else SMTP
    # aiosmtpd refuses a longer line with "500 Line too long"; +2 for the CRLF.
    cls = type(base.__name__, (base,), {"line_length_limit": cfg.server.max_line_bytes + 2})

    def make() -> SMTP:
        return cls(
            handler,
            data_size_limit=cfg.server.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=cfg.server.domain,
            ident="listserv ESMTP",
            timeout=300,
            decode_data=False,
        )

    return make
