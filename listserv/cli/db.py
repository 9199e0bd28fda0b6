"""`listserv db upgrade`: bring the database's schema up to this listserv's; `db backup`: copy it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from listserv.cli.common import ConfigOpt, app, config_from, fail, guarded, out
from listserv.store import Store, backup, schema

db_app = typer.Typer(no_args_is_help=True, help="Upgrade or back up the database.")
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


@db_app.command("backup")
@guarded
def db_backup(
    file: Annotated[Path, typer.Argument(help="Where to write the copy.")],
    config: ConfigOpt = None,
) -> None:
    """Copy the database to FILE, safely while the server runs (SQLite); PostgreSQL: pg_dump."""
    cfg = config_from(config)
    url = cfg.database_url
    dialect = make_url(url).get_backend_name()
    if dialect == "postgresql":
        fail(
            "listserv backs up SQLite only; back up PostgreSQL with "
            f"{backup.pg_dump_command(url, str(file))} (password from ~/.pgpass or PGPASSWORD)",
            1,
        )
    if dialect != "sqlite":
        fail(f"cannot back up a {dialect} database: listserv supports SQLite and PostgreSQL", 2)
    size = backup.backup_sqlite(url, file)
    out.print(f"backed up {backup.sqlite_path(url)} to {file} ({size:,} bytes)", soft_wrap=True)
