"""Held posts: `listserv held`, `approve ID`, `reject ID`."""

from __future__ import annotations

from typing import Annotated

import typer

from listserv import moderation
from listserv.cli import common
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
from listserv.dmarc import DmarcPolicies, default_resolver
from listserv.store import posts

PostIdArg = Annotated[
    int, typer.Argument(metavar="POST_ID", help="The held post's id, as 'listserv held' shows.")
]


@app.command()
@guarded
def held(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Posts waiting for approval."""
    cfg = config_from(config)
    with store_for(cfg).session() as s:
        rows = [
            {
                "id": p.id,
                "list": p.list_name,
                "sender": p.sender,
                "subject": p.subject,
                "received_at": iso(p.received_at),
                "reason": p.reason,
            }
            for p in posts.held_posts(s)
        ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No posts are waiting for approval.")
        return
    print_table(
        ("id", "list", "sender", "subject", "received", "reason"),
        [
            (
                str(r["id"]),
                r["list"],
                r["sender"],
                r["subject"],
                str(r["received_at"] or "")[:16],
                r["reason"],
            )
            for r in rows
        ],
    )


@app.command()
@guarded
def approve(post_id: PostIdArg, config: ConfigOpt = None) -> None:
    """Release a held post to the list."""
    cfg = config_from(config)
    with store_for(cfg).session() as s:
        count = moderation.approve(s, cfg, post_id, common.now(), DmarcPolicies(default_resolver()))
    out.print(f"post {post_id} approved; queued for {count} member(s)")


@app.command()
@guarded
def reject(post_id: PostIdArg, config: ConfigOpt = None) -> None:
    """Refuse a held post; the sender is told."""
    cfg = config_from(config)
    with store_for(cfg).session() as s:
        moderation.reject(s, cfg, post_id, common.now())
    out.print(f"post {post_id} rejected; the sender has been told")
