"""`listserv queue`: copies waiting to be delivered or given up on, and why."""

from __future__ import annotations

from collections.abc import Iterator
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
    print_json_stream,
    print_table,
    store_for,
)
from listserv.states import UNSENT, CopyState
from listserv.store import outbound
from listserv.store.tables import Delivery

TABLE_ROWS = 200  # a terminal table stops here; --json prints every row

FailedOpt = Annotated[
    bool, typer.Option("--failed", help="Only the copies listserv gave up on, with the error.")
]


def row(d: Delivery) -> dict:
    return {
        "id": d.id,
        "recipient": d.recipient,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at) if d.state in UNSENT else None,
        "last_error": d.last_error,
        "outbound_id": d.outbound_id,
    }


@app.command("queue")
@guarded
def queue_(config: ConfigOpt = None, as_json: JsonOpt = False, failed: FailedOpt = False) -> None:
    """Copies waiting to be delivered, and those that failed, with why."""
    cfg = config_from(config)
    states = (CopyState.FAILED,) if failed else (*UNSENT, CopyState.FAILED)
    with store_for(cfg).session() as s:
        rows: Iterator[dict] = (row(d) for d in outbound.copies(s, states))
        if as_json:
            print_json_stream(rows)
            return
        counts = outbound.counts_by_state(s)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "empty"
        out.print(f"Queue: {summary}")
        shown = [r for _, r in zip(range(TABLE_ROWS + 1), rows, strict=False)]
    if shown:
        print_table(
            ("id", "recipient", "state", "attempts", "next attempt", "last error"),
            [
                (
                    str(r["id"]),
                    r["recipient"],
                    r["state"],
                    str(r["attempts"]),
                    str(r["next_attempt_at"] or "")[:19],
                    r["last_error"] or "waiting for its first try",
                )
                for r in shown[:TABLE_ROWS]
            ],
        )
    if len(shown) > TABLE_ROWS:
        out.print(f"(the first {TABLE_ROWS} shown; --json prints every copy)")
