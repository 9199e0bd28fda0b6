"""`listserv queue`: copies waiting to be delivered, and why."""

from __future__ import annotations

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
from listserv.store import outbound


@app.command("queue")
@guarded
def queue_(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Copies waiting to be delivered, and why."""
    cfg = config_from(config)
    with store_for(cfg).session() as s:
        rows = [
            {
                "id": d.id,
                "recipient": d.recipient,
                "state": d.state,
                "attempts": d.attempts,
                "next_attempt_at": iso(d.next_attempt_at),
                "last_error": d.last_error,
                "outbound_id": d.outbound_id,
            }
            for d in outbound.pending(s)
        ]
        counts = outbound.counts_by_state(s)
    if as_json:
        print_json(rows)
        return
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "empty"
    out.print(f"Queue: {summary}")
    if rows:
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
                for r in rows[:200]
            ],
        )
