"""`listserv inbound`: accepted messages not handled yet or parked, and `inbound retry ID`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from listserv.cli.common import (
    ConfigOpt,
    JsonOpt,
    app,
    config_from,
    guarded,
    iso,
    out,
    print_json,
    print_table,
    store_for,
)
from listserv.errors import ListservError
from listserv.message import RawMessage
from listserv.store import inbound
from listserv.store.tables import Inbound

inbound_app = typer.Typer(help="Accepted messages waiting to be handled, or parked after failing.")
app.add_typer(inbound_app, name="inbound")

FailedOpt = Annotated[bool, typer.Option("--failed", help="Only the parked messages.")]


def _item(row: Inbound) -> dict:
    try:
        msg = RawMessage(row.raw)
        subject, sender = msg.get("subject"), msg.get("from")
    except Exception:  # noqa: BLE001 - a listing never fails on the message it lists
        subject, sender = "", ""
    return {
        "id": row.id,
        "state": "parked" if row.state == "failed" else "waiting",
        "received_at": iso(row.received_at),
        "mail_from": row.mail_from,
        "rcpts": json.loads(row.rcpts),
        "from": " ".join(sender.split()),
        "subject": " ".join(subject.split()),
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "error": row.error,
    }


@inbound_app.callback(invoke_without_command=True)
@guarded
def inbound_(
    ctx: typer.Context,
    failed: FailedOpt = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accepted messages not handled yet, and those parked with the reason they failed."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = config_from(config)
    with store_for(cfg).reader() as s:
        rows = [_item(r) for r in inbound.listing(s, failed_only=failed)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No parked messages." if failed else "Every accepted message has been handled.")
        return
    print_table(
        ("id", "state", "received", "from", "subject", "tries", "reason"),
        [
            (
                str(r["id"]),
                r["state"],
                str(r["received_at"] or "")[:19],
                r["from"] or r["mail_from"],
                r["subject"],
                str(r["attempts"]),
                r["error"],
            )
            for r in rows
        ],
    )


@inbound_app.command("retry")
@guarded
def retry(
    inbound_id: Annotated[
        int, typer.Argument(metavar="ID", help="The message's id, as 'listserv inbound' shows.")
    ],
    config: ConfigOpt = None,
) -> None:
    """Try a parked message again now (the running server picks it up within a second)."""
    cfg = config_from(config)
    with store_for(cfg).session() as s:
        if not inbound.retry(s, inbound_id):
            raise ListservError(
                f"no parked or waiting inbound message {inbound_id}; "
                "see 'listserv inbound --failed'"
            )
    out.print(f"inbound message {inbound_id} queued to be tried again")
