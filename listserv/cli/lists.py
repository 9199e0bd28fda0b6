"""`listserv lists`: the configured lists with their member counts."""

from __future__ import annotations

from listserv.cli.common import (
    ConfigOpt,
    JsonOpt,
    app,
    config_from,
    guarded,
    print_json,
    print_table,
    store_for,
)
from listserv.states import MemberStatus
from listserv.store import members


@app.command("lists")
@guarded
def lists_(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The configured lists with their member counts."""
    cfg = config_from(config)
    store = store_for(cfg)
    rows = []
    with store.session() as s:
        for name, lst in sorted(cfg.lists.items()):
            counts = members.count_members(s, name)
            rows.append(
                {
                    "name": name,
                    "address": f"{name}@{cfg.server.domain}",
                    "title": lst.display_title,
                    "posting": lst.posting,
                    "subscription": lst.subscription,
                    "members": counts.get(MemberStatus.ACTIVE, 0)
                    + counts.get(MemberStatus.DISABLED, 0),
                    "pending": counts.get(MemberStatus.PENDING, 0),
                }
            )
    if as_json:
        print_json(rows)
        return
    print_table(
        ("list", "title", "posting", "members", "pending"),
        [
            (r["address"], r["title"], r["posting"], str(r["members"]), str(r["pending"]))
            for r in rows
        ],
    )
