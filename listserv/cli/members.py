"""`listserv members list|add|remove|import|export`."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from sqlmodel import Session

from listserv import membership
from listserv.addresses import is_valid_address, normalise
from listserv.cli import common
from listserv.cli.common import (
    ConfigOpt,
    JsonOpt,
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
from listserv.store import members
from listserv.store.tables import Member

DELIVERIES = tuple(Delivery)
STATUSES = tuple(MemberStatus)


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
    name: str,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    status: Annotated[str | None, typer.Option(help="pending|active|disabled|left")] = None,
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
    name: str,
    addresses: list[str],
    config: ConfigOpt = None,
    delivery: Annotated[str, typer.Option(help="regular|digest|alumni")] = "regular",
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
def members_remove(name: str, addresses: list[str], config: ConfigOpt = None) -> None:
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


@members_app.command("import")
@guarded
def members_import(
    name: str,
    file: Path,
    config: ConfigOpt = None,
    no_welcome: Annotated[bool, typer.Option("--no-welcome")] = True,
) -> None:
    """Import members from a CSV with an 'address' column (optional 'name', 'delivery')."""
    cfg = config_from(config)
    lst = cfg.list(name)
    try:
        fh = file.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file") from None
    with file.open(encoding="utf-8-sig", errors="replace") as counting:
        total = sum(1 for _ in counting) - 1
    added = skipped = bad = 0
    with fh, store_for(cfg).session() as s, Progress(console=err, transient=True) as progress:
        members.ensure_list(s, lst.name, common.now())
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "address" not in [f.strip().lower() for f in reader.fieldnames]:
            raise UsageError(f"{file}: the first row must be a header with an 'address' column")
        task = progress.add_task(f"importing into {lst.name}", total=max(total, 0))
        for row in reader:
            progress.advance(task)
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            line = reader.line_num
            address = row.get("address", "")
            delivery = (row.get("delivery") or Delivery.REGULAR).lower()
            if not is_valid_address(address):
                err.print(
                    f"{file}:{line}: {address!r} is not an email address; skipped",
                    markup=False,
                    soft_wrap=True,
                )
                bad += 1
                continue
            if delivery not in DELIVERIES:
                err.print(
                    f"{file}:{line}: delivery {delivery!r} is not one of "
                    f"{', '.join(DELIVERIES)}; skipped",
                    markup=False,
                    soft_wrap=True,
                )
                bad += 1
                continue
            result = add_one(
                s, cfg, lst, normalise(address), delivery, row.get("name", ""), not no_welcome
            )
            added, skipped = added + (result == "added"), skipped + (result != "added")
    out.print(
        f"imported {added} member(s) into {lst.name}; {skipped} already there; "
        f"{bad} bad row(s) skipped"
    )


@members_app.command("export")
@guarded
def members_export(name: str, config: ConfigOpt = None) -> None:
    """Write the list's live members as CSV (address,name,delivery,status) to stdout."""
    cfg = config_from(config)
    lst = cfg.list(name)
    writer = csv.writer(sys.stdout)
    writer.writerow(["address", "name", "delivery", "status"])
    with store_for(cfg).session() as s:
        for m in members.list_members(s, lst.name):
            if m.status in LIVE:
                writer.writerow([m.address, m.name, m.delivery, m.status])
