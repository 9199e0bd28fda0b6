"""What the server writes to its log: one line per message handled; libraries kept quiet."""

from __future__ import annotations

import logging

from listserv.cli.run import CHATTY_LOGGERS, setup_logging
from tests.conftest import DOMAIN, add_members, send_to_list, settled

ANN = "ann@example.com"
POST = f"networking@{DOMAIN}"


async def test_one_info_line_per_message_says_who_where_what_and_how_long(server, sink, caplog):
    """A post and a command mail each log one INFO line: sender, address, outcome, duration."""
    add_members(server, ANN, "bob@example.net")
    caplog.set_level(logging.INFO)
    await send_to_list(server, ANN, POST, "Anyone hiring?", "Acme is.")
    await send_to_list(server, ANN, f"networking-request@{DOMAIN}", "help")
    await settled(server)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO
        and r.name.startswith("listserv.")
        and r.name not in ("listserv.server", "listserv.scheduler", "listserv.delivery")
    ]
    assert len(lines) == 2, lines
    post, command = lines
    assert ANN in post and f"{POST}: post " in post and "accepted" in post and " ms)" in post
    assert "2 copies queued" in post
    assert f"networking-request@{DOMAIN}: request mail handled" in command


def test_smtp_and_scheduler_libraries_log_warnings_only_unless_verbose():
    """aiosmtpd's per-line log and APScheduler's job notes are hidden at INFO unless --verbose."""
    try:
        setup_logging("info")
        for name in CHATTY_LOGGERS:
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        setup_logging("info", verbose=True)
        for name in CHATTY_LOGGERS:
            assert logging.getLogger(name).isEnabledFor(logging.INFO), name
    finally:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_no_auth_mechanisms_line_even_when_verbose():
    """aiosmtpd's 'Available AUTH mechanisms' line is dropped: listserv offers no AUTH."""
    setup_logging("info", verbose=True)
    try:
        smtp_log = logging.getLogger("mail.log")
        note = smtp_log.makeRecord(
            "mail.log",
            logging.INFO,
            __file__,
            1,
            "Available AUTH mechanisms: LOGIN(builtin)",
            (),
            None,
        )
        assert not smtp_log.filter(note)
        other = smtp_log.makeRecord("mail.log", logging.INFO, __file__, 1, "EHLO x", (), None)
        assert smtp_log.filter(other)
    finally:
        logging.getLogger("mail.log").setLevel(logging.NOTSET)
