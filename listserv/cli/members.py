"""`listserv members list|add|remove|import|export`."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import json
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.progress import Progress
from sqlmodel import Session

from listserv import imports, membership
from listserv.addresses import is_valid_address, normalise
from listserv.cli import common
from listserv.cli.common import (
    ConfigOpt,
    JsonOpt,
    ListArg,
    config_from,
    err,
    guarded,
    iso,
    members_app,
    out,
    print_table,
    store_for,
)
from listserv.config import Config, ListConfig
from listserv.errors import UsageError
from listserv.fields import match_field
from listserv.states import LIVE, Delivery, MemberStatus
from listserv.store import Store, members
from listserv.store.tables import Member

DELIVERIES = tuple(Delivery)
STATUSES = tuple(MemberStatus)


AddressesArg = Annotated[
    list[str], typer.Argument(metavar="ADDRESS...", help="One or more email addresses.")
]


def member_dict(m: Member) -> dict:
    return {
        "address": m.address,
        "name": m.name,
        "status": m.status,
        "delivery": m.delivery,
        "bounce_score": m.bounce_score,
        "joined_at": iso(m.joined_at),
        "left_at": iso(m.left_at),
        "left_reason": m.left_reason,
        "field": m.field,
    }


@members_app.command("list")
@guarded
def members_list(
    name: ListArg,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    status: Annotated[
        str | None,
        typer.Option(help="Only members in this state: pending, active, disabled or left."),
    ] = None,
) -> None:
    """Every member of a list (all statuses unless --status)."""
    cfg = config_from(config)
    lst = cfg.list(name)
    if status and status not in STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    store = store_for(cfg)
    with store.session() as s:
        if as_json:  # streamed: a 100,000-member list never sits in memory
            sys.stdout.write("[")
            for i, m in enumerate(members.list_members(s, lst.name, status)):
                sys.stdout.write(("," if i else "") + "\n  " + json.dumps(member_dict(m)))
            sys.stdout.write("\n]\n")
            return
        print_table(
            ("address", "status", "delivery", "bounce score", "joined", "left reason"),
            [
                (
                    m.address,
                    m.status,
                    m.delivery,
                    f"{m.bounce_score:g}",
                    m.joined_at.strftime("%Y-%m-%d") if m.joined_at else "",
                    m.left_reason,
                )
                for m in members.list_members(s, lst.name, status)
            ],
        )


def add_one(
    s: Session,
    cfg: Config,
    lst: ListConfig,
    address: str,
    delivery: str,
    name: str,
    welcome: bool,
    field: str = "",
) -> str:
    """Add or re-activate one member; returns what happened."""
    ctx = membership.Context(
        s=s, cfg=cfg, lst=lst, site=cfg.site, now=common.now(), address=address
    )
    result = membership.add_by_admin(
        ctx, address, delivery, name, send_welcome=welcome, field=field
    )
    membership.send_notices(ctx)
    return result


def check_delivery(delivery: str) -> None:
    if delivery not in DELIVERIES:
        raise UsageError(f"--delivery {delivery!r} is not one of {', '.join(DELIVERIES)}")


def check_field(lst: ListConfig, field: str) -> str:
    """The list's field that field names ('' for none); UsageError naming the fields otherwise."""
    if not field.strip():
        return ""
    found = match_field(field, lst.field_table)
    if found is None:
        known = ", ".join(lst.field_table) or "none: fields are off for this list"
        raise UsageError(f"--field {field!r} is not one of this list's fields ({known})")
    return found


@members_app.command("add")
@guarded
def members_add(
    name: ListArg,
    addresses: AddressesArg,
    config: ConfigOpt = None,
    delivery: Annotated[
        str, typer.Option(help="What they get: regular (every post), digest or alumni.")
    ] = "regular",
    no_welcome: Annotated[bool, typer.Option("--no-welcome", help="Send no welcome mail.")] = False,
    field: Annotated[
        str,
        typer.Option(help="Their field of work, one of the list's fields (close spellings ok)."),
    ] = "",
) -> None:
    """Add members directly (no confirmation round); they get a welcome mail unless --no-welcome."""
    cfg = config_from(config)
    lst = cfg.list(name)
    check_delivery(delivery)
    chosen = check_field(lst, field)
    bad = [a for a in addresses if not is_valid_address(a)]
    if bad:
        raise UsageError(f"{bad[0]!r} is not an email address like 'ann@example.org'")
    with store_for(cfg).session() as s:
        members.ensure_list(s, lst.name, common.now())
        for address in addresses:
            result = add_one(s, cfg, lst, normalise(address), delivery, "", not no_welcome, chosen)
            out.print(f"{normalise(address)}: {result}")


@members_app.command("remove")
@guarded
def members_remove(name: ListArg, addresses: AddressesArg, config: ConfigOpt = None) -> None:
    """Remove members at once (no mail is sent)."""
    cfg = config_from(config)
    lst = cfg.list(name)
    missing = 0
    with store_for(cfg).session() as s:
        for address in addresses:
            m = members.get_member(s, lst.name, normalise(address))
            if m is None or m.status == MemberStatus.LEFT:
                err.print(
                    f"listserv: {normalise(address)} is not a member of {lst.name}",
                    markup=False,
                    soft_wrap=True,
                )
                missing += 1
                continue
            members.remove(s, m, common.now(), "removed by an admin")
            out.print(f"{m.address}: removed")
    if missing:
        raise typer.Exit(1)


IMPORT_BATCH = 5000  # rows per transaction: few commits, yet a live server waits ~0.1 s at most


@members_app.command("import")
@guarded
def members_import(
    name: Annotated[str, typer.Argument(help="The list to import into.")],
    file: Annotated[Path, typer.Argument(help="The export to read (format detected).")],
    config: ConfigOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help=f"One of {', '.join(imports.FORMATS)}; detected if not given."
        ),
    ] = None,
    delivery: Annotated[
        str,
        typer.Option(
            help="regular|digest|alumni for members the file gives no mode "
            "(e.g. the digest half of a Mailman 2 list_members -d split)."
        ),
    ] = "regular",
    welcome: Annotated[
        bool,
        typer.Option("--welcome/--no-welcome", help="Send each new member the welcome mail."),
    ] = False,
    field: Annotated[
        str,
        typer.Option(
            help="The field of work for members the file names none (close spellings ok)."
        ),
    ] = "",
) -> None:
    """Import members from a listserv CSV or a Mailman 2/3, Google Groups or Groups.io export."""
    cfg = config_from(config)
    lst = cfg.list(name)
    default_field = check_field(lst, field)
    if fmt is not None and fmt not in imports.FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(imports.FORMATS)}")
    if delivery not in imports.DELIVERIES:
        raise UsageError(f"--delivery {delivery!r} is not one of {', '.join(imports.DELIVERIES)}")
    try:
        fh = file.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file") from None
    store = store_for(cfg)
    with fh:
        try:
            head = list(itertools.islice(fh, imports.SNIFF_LINES))
            fmt = fmt or imports.detect_format(head, str(file))
            rows = imports.read_members(
                itertools.chain(head, fh),
                fmt,
                str(file),
                default_delivery=delivery,
            )
            rows = _with_fields(rows, lst, default_field, file)
            summary, result = _import_rows(store, cfg, lst, file, rows, fmt, welcome, fh)
        except imports.UnknownFormatError as exc:
            raise UsageError(str(exc)) from None
        except UnicodeDecodeError:
            raise UsageError(
                f"{file} is not UTF-8 text; convert it (iconv -f latin1 -t utf-8) and import "
                "it again (members imported before the bad line are kept and skipped then)"
            ) from None
    added, reactivated, already = result["added"], result["reactivated"], result["already"]
    sys.stdout.write(
        f"imported {added + reactivated} member(s) into {lst.name}: {added} new, "
        f"{reactivated} re-activated; {already} already there\n{summary.line()}\n"
    )


def _with_fields(
    rows: Iterator[imports.Row], lst: ListConfig, default: str, file: Path
) -> Iterator[imports.Row]:
    """Each row's field as the list names it (a CSV 'field' column, else --field); a field
    the list does not have is dropped with a line on stderr, the member still imported."""
    for row in rows:
        if isinstance(row, imports.BadRow):
            yield row
            continue
        named = match_field(row.field, lst.field_table) if row.field.strip() else None
        if row.field.strip() and named is None:
            err.print(
                f"{file}:{row.line}: field {row.field!r} is not one of this list's fields; "
                "imported without one",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        yield dataclasses.replace(row, field=(named or "") if row.field.strip() else default)


def _import_rows(
    store: Store,
    cfg: Config,
    lst: ListConfig,
    file: Path,
    rows: Iterator[imports.Row],
    fmt: str,
    welcome: bool,
    fh: TextIO,
) -> tuple[imports.Summary, Counter[str]]:
    """Stream rows into the store IMPORT_BATCH at a time; bad rows to stderr as FILE:LINE.
    Returns what was read and how many addresses were added, re-activated, already there."""
    summary, total = imports.Summary(fmt=fmt), Counter[str]()
    with store.session() as s:
        members.ensure_list(s, lst.name, common.now())
    progress = Progress(console=err, transient=True) if err.is_terminal else None
    with progress or contextlib.nullcontext():
        task = (
            progress.add_task(f"importing into {lst.name}", total=file.stat().st_size)
            if progress
            else None
        )

        def flush(batch: list[imports.ImportRow]) -> None:
            now = common.now()
            with store.session() as s:
                done = members.import_batch(s, lst.name, batch, now)
                if welcome:
                    _welcome(s, cfg, lst, [*done.added, *done.reactivated], now)
            total.update(
                added=len(done.added), reactivated=len(done.reactivated), already=len(done.already)
            )
            if progress is not None and task is not None:
                progress.update(task, completed=fh.buffer.tell())

        batch: list[imports.ImportRow] = []
        for row in rows:
            summary.add(row)
            if isinstance(row, imports.BadRow):
                err.print(
                    f"{file}:{row.line}: {row.problem}; skipped",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            else:
                batch.append(row)
                if len(batch) >= IMPORT_BATCH:
                    flush(batch)
                    batch = []
        if batch:
            flush(batch)
    return summary, total


def _welcome(s: Session, cfg: Config, lst: ListConfig, addresses: list[str], now: datetime) -> None:
    """Queue the welcome mail for each of these members who is now active."""
    ctx = membership.Context(s=s, cfg=cfg, lst=lst, site=cfg.site, now=now, address="")
    for m in members.members_by_address(s, lst.name, addresses):
        if m.status == MemberStatus.ACTIVE:
            membership.welcome(ctx, m)
    membership.send_notices(ctx)


@members_app.command("export")
@guarded
def members_export(name: ListArg, config: ConfigOpt = None) -> None:
    """Write the list's live members as CSV (address,name,delivery,status) to stdout."""
    cfg = config_from(config)
    lst = cfg.list(name)
    writer = csv.writer(sys.stdout)
    writer.writerow(["address", "name", "delivery", "status"])
    with store_for(cfg).session() as s:
        for m in members.list_members(s, lst.name):
            if m.status in LIVE:
                writer.writerow([m.address, m.name, m.delivery, m.status])
