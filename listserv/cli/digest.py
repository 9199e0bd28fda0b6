"""`listserv digest send|preview NAME [--kind regular|alumni]`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from listserv.cli import common
from listserv.cli.common import (
    ConfigOpt,
    ListArg,
    config_from,
    digest_app,
    guarded,
    out,
    store_for,
)
from listserv.config import Config
from listserv.digest import runs

KindOpt = Annotated[
    str, typer.Option("--kind", help="regular (the digest) or alumni (the alumni update).")
]


def _digest_config(name: str, config: str | None, kind: str) -> Config:
    """The config, after checking the list name and the digest kind (exit 2 when wrong)."""
    cfg = config_from(config)
    cfg.list(name)
    runs.digest_kind(kind)
    return cfg


@digest_app.command("send")
@guarded
def digest_send(name: ListArg, config: ConfigOpt = None, kind: KindOpt = "regular") -> None:
    """Build and queue the digest for the period so far, now."""
    cfg = _digest_config(name, config, kind)
    out.print(runs.run_digest(store_for(cfg), cfg, name, kind, common.now()))


@digest_app.command("preview")
@guarded
def digest_preview(name: ListArg, config: ConfigOpt = None, kind: KindOpt = "regular") -> None:
    """Print the digest the next run would send; sends and records nothing."""
    cfg = _digest_config(name, config, kind)
    msg = runs.preview(store_for(cfg), cfg, name, kind, common.now())
    if msg is None:
        out.print("Nothing to send: no posts (or, for alumni, no news) since the last digest.")
        return
    sys.stdout.write(msg.as_string())
