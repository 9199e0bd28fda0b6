"""deploy/postfix.cf through a real Postfix: a post goes Postfix -> listserv (LMTP) -> Postfix
-> the members, and an unknown list address is refused at RCPT with 550 (no backscatter)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosmtplib
import pytest

from listserv.dmarc import DmarcPolicies
from listserv.server import Server
from tests.conftest import (
    DOMAIN,
    FakeResolver,
    add_members,
    asend,
    mails_to,
    make_config,
    make_message,
)
from tests.postfix import PostfixInstance, skip_reason

_SKIP = skip_reason()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "postfix.cf"
ANN, BOB = "ann@example.com", "bob@example.net"


async def rcpt_answer(port: int, rcpt: str) -> tuple[int, str]:
    """What Postfix answers to RCPT TO (after address verification has had its say)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
    await client.connect()
    try:
        await client.mail(ANN)
        try:
            answer = await client.rcpt(rcpt)
        except aiosmtplib.SMTPRecipientRefused as exc:
            return exc.code, exc.message
        return answer.code, answer.message
    finally:
        client.close()


async def test_post_through_postfix_reaches_members_and_unknown_address_gets_550(tmp_path, sink):
    """Postfix hands the post to listserv over LMTP, sends the copies on, and refuses a typo."""
    mta = PostfixInstance(
        domain=DOMAIN, lmtp_port=0, relayhost_port=sink.port, extra=DEPLOY.read_text()
    )
    cfg = make_config(
        tmp_path,
        relay=f"smtp://127.0.0.1:{mta.port}",
        server_extra='protocol = "lmtp"\n',
    )
    srv = Server(cfg, dmarc=DmarcPolicies(FakeResolver()))
    await srv.start()
    try:
        mta.lmtp_port = srv.smtp_port
        await asyncio.to_thread(mta.start)
        add_members(srv, ANN, BOB)
        raw = make_message(
            f"From: {ANN}\nTo: networking@{DOMAIN}\nSubject: Acme is hiring\n"
            "Message-ID: <through-postfix@example.com>\n\nThree openings in the warehouse.\n"
        )
        await asend(mta.port, ANN, f"networking@{DOMAIN}", raw)
        copy = (await mails_to(sink, BOB))[0]
        assert copy["Subject"] == "[networking] Acme is hiring"
        assert copy["List-Id"] == f"Tri-County Job Seekers Networking <networking.{DOMAIN}>"
        assert "mta.test.invalid" in str(copy["Received"]), "the copy went out through Postfix"
        code, message = await rcpt_answer(mta.port, f"netwrking@{DOMAIN}")
        assert code == 550, (code, message, mta.log()[-2000:])
        code, _ = await rcpt_answer(mta.port, f"networking-request@{DOMAIN}")
        assert code == 250
    finally:
        await srv.stop()
        await asyncio.to_thread(mta.stop)
