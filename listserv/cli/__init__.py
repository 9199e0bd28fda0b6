"""The `listserv` command line: one module per command group, all on one typer app."""

from __future__ import annotations

from listserv.cli import db, digest, inbound, lists, members, moderation, queue, run, stats
from listserv.cli.common import app, fail
from listserv.errors import ConfigError

__all__ = [
    "app",
    "db",
    "digest",
    "inbound",
    "lists",
    "main",
    "members",
    "moderation",
    "queue",
    "run",
    "stats",
]


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # raised before a command's own guard (e.g. while parsing)
        fail(str(exc), 2)
