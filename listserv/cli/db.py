"""`listserv db upgrade`: bring the database's schema up to this listserv's."""

from __future__ import annotations

import typer

from listserv.cli.common import ConfigOpt, app, config_from, guarded, out
from listserv.store import Store, schema

db_app = typer.Typer(no_args_is_help=True, help="Upgrade the database's schema.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
@guarded
def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply every schema revision the database lacks, one line per revision."""
    cfg = config_from(config)
    store = Store(cfg.database_url)
    try:
        applied = schema.upgrade_to_head(store.engine, progress=out.print)
        if applied == 0:
            store.prepare()  # a new database is created at the newest revision
        out.print(f"database is at schema revision {schema.head()} ({applied} applied)")
    finally:
        store.dispose()
