"""What every CLI command shares: the typer apps, config loading, errors, output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from listserv.config import Config, load_config
from listserv.errors import ListservError, UsageError
from listserv.store import Store, open_store

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="listserv: a mailing-list manager that keeps job-seekers connected.",
)
members_app = typer.Typer(
    no_args_is_help=True, help="List, add, remove, import and export members."
)
digest_app = typer.Typer(no_args_is_help=True, help="Send or preview a digest now.")
app.add_typer(members_app, name="members")
app.add_typer(digest_app, name="digest")

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="Config file (default: $LISTSERV_CONFIG).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON array.")]
ListArg = Annotated[
    str,
    typer.Argument(metavar="LIST", help="The list's name, as in the config's lists.NAME table."),
]
T = TypeVar("T")


def fail(message: str, code: int) -> None:
    """One actionable line on stderr, then exit with code (2 usage/config, 1 runtime)."""
    sys.stderr.write(f"listserv: {message}\n")
    raise typer.Exit(code)


def config_from(path: str | None) -> Config:
    path = path or os.environ.get("LISTSERV_CONFIG")
    if not path:
        raise UsageError("no config file: pass --config FILE or set LISTSERV_CONFIG")
    return load_config(path)


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn ListservError into one line and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except ListservError as exc:
            fail(str(exc), exc.exit_code)
            raise  # unreachable
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
            raise

    return wrapper


def store_for(cfg: Config) -> Store:
    return open_store(cfg.database_url)


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def print_json(items: list[dict]) -> None:
    sys.stdout.write(json.dumps(items, indent=2, default=str) + "\n")


def print_json_stream(items: Iterable[dict]) -> None:
    """A JSON array written item by item, so any number of rows prints in constant memory."""
    sep = "\n"
    sys.stdout.write("[")
    for item in items:
        body = json.dumps(item, indent=2, default=str).replace("\n", "\n  ")
        sys.stdout.write(f"{sep}  {body}")
        sep = ",\n"
    sys.stdout.write("\n]\n" if sep != "\n" else "]\n")


def print_table(headers: Sequence[str], cells: Sequence[Sequence[object]]) -> None:
    """A table: rich on a terminal; plain aligned columns when piped, never cut (issue 11)."""
    rows = [["" if c is None else str(c) for c in row] for row in cells]
    if out.is_terminal:
        table = Table(*headers)
        for cells_row in rows:
            table.add_row(*cells_row)
        out.print(table)
        return
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line_cells in (list(headers), *rows):
        line = "  ".join(cell.ljust(w) for cell, w in zip(line_cells, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")
