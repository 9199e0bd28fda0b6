"""The `listserv` command line: serve, check-config, reload, lists, members, held, digests, queue."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from listserv.addresses import is_valid_address, normalise
from listserv.config import Config, load_config
from listserv.errors import ConfigError, ListservError, UsageError
from listserv.store import Store, open_store

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="listserv: a mailing-list manager that keeps job-seekers connected.")
members_app = typer.Typer(no_args_is_help=True, help="List, add, remove, import and export members.")
digest_app = typer.Typer(no_args_is_help=True, help="Send or preview a digest now.")
app.add_typer(members_app, name="members")
app.add_typer(digest_app, name="digest")

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Config file (default: $LISTSERV_CONFIG).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON array.")]
DELIVERIES = ("regular", "digest", "alumni")
STATUSES = ("pending", "active", "disabled", "left")
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
    import functools

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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def print_json(items: list[dict]) -> None:
    sys.stdout.write(json.dumps(items, indent=2, default=str) + "\n")


# -- running ---------------------------------------------------------------------------------

@app.command()
@guarded
def serve(config: ConfigOpt = None) -> None:
    """Run everything: inbound SMTP/LMTP, HTTP, scheduler and delivery, in one process."""
    from listserv.server import serve as run

    cfg = config_from(config)
    logging.basicConfig(level=cfg.server.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(cfg))


@app.command()
@guarded
def demo(folder: Annotated[Path, typer.Option(help="Where to put the demo list.")] = Path("listserv-demo")) -> None:
    """A short tour: a list with three members, a post, and a "I got a job" leave, as .eml files."""
    from listserv.demo import run_demo

    files = asyncio.run(run_demo(folder))
    out.print(f"The demo list lives in {folder}/ (config: {folder}/listserv.toml).")
    out.print(f"{len(files)} message(s) were written to {folder}/var/outbox/ instead of being sent:")
    for f in files:
        out.print(f"  {f}")
    out.print("Open the one to bob@example.net: he said he got a job, so he was switched to alumni mode.")


@app.command("check-config")
@guarded
def check_config(config: ConfigOpt = None) -> None:
    """Validate the config file; exit 2 naming the key and the problem."""
    cfg = config_from(config)
    out.print(f"{cfg.path}: OK, {len(cfg.lists)} list(s): {', '.join(sorted(cfg.lists)) or 'none'}")


@app.command()
@guarded
def reload(config: ConfigOpt = None) -> None:
    """Ask the running server to re-read its config (SIGHUP)."""
    cfg = config_from(config)
    pid_file = cfg.resolve(cfg.server.pid_file)
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        fail(f"no running server found (pid file {pid_file}); start one with 'listserv serve'", 1)
    except PermissionError:
        fail(f"not allowed to signal the server (pid in {pid_file}); run as the same user", 1)
    out.print(f"asked the server (pid {pid}) to reload {cfg.path}")


@app.command("lists")
@guarded
def lists_(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The configured lists with their member counts."""
    from listserv.store import members

    cfg = config_from(config)
    store = store_for(cfg)
    rows = []
    with store.session() as s:
        for name, lst in sorted(cfg.lists.items()):
            counts = members.count_members(s, name)
            rows.append({"name": name, "address": f"{name}@{cfg.server.domain}", "title": lst.display_title,
                         "posting": lst.posting, "subscription": lst.subscription,
                         "members": counts.get("active", 0) + counts.get("disabled", 0),
                         "pending": counts.get("pending", 0)})
    if as_json:
        print_json(rows)
        return
    table = Table("list", "title", "posting", "members", "pending")
    for r in rows:
        table.add_row(r["address"], r["title"], r["posting"], str(r["members"]), str(r["pending"]))
    out.print(table)


# -- members ---------------------------------------------------------------------------------

def member_dict(m: Any) -> dict:
    return {"address": m.address, "name": m.name, "status": m.status, "delivery": m.delivery,
            "bounce_score": m.bounce_score, "joined_at": _iso(m.joined_at),
            "left_at": _iso(m.left_at), "left_reason": m.left_reason}


@members_app.command("list")
@guarded
def members_list(name: str, config: ConfigOpt = None, as_json: JsonOpt = False,
                 status: Annotated[str | None, typer.Option(help="pending|active|disabled|left")] = None) -> None:
    """Every member of a list (all statuses unless --status)."""
    from listserv.store import members

    cfg = config_from(config)
    lst = cfg.list(name)
    if status and status not in STATUSES:
        raise UsageError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    store = store_for(cfg)
    with store.session() as s:
        if as_json:
            sys.stdout.write("[")
            for i, m in enumerate(members.list_members(s, lst.name, status)):
                sys.stdout.write(("," if i else "") + "\n  " + json.dumps(member_dict(m)))
            sys.stdout.write("\n]\n")
            return
        table = Table("address", "status", "delivery", "bounce score", "joined", "left reason")
        for m in members.list_members(s, lst.name, status):
            table.add_row(m.address, m.status, m.delivery, f"{m.bounce_score:g}",
                          m.joined_at.strftime("%Y-%m-%d") if m.joined_at else "", m.left_reason)
        out.print(table)


def add_one(s: Any, cfg: Config, lst: Any, address: str, delivery: str, name: str, welcome: bool) -> str:
    """Add or re-activate one member; returns what happened."""
    from listserv import commands
    from listserv.commands._shared import welcome as welcome_reply
    from listserv.notices import notice
    from listserv.posting import Site
    from listserv.store import members

    existing = members.get_member(s, lst.name, address)
    if existing is not None and existing.status in ("active", "disabled"):
        return "already a member"
    member = members.upsert_member(s, lst.name, address, now(), status="pending", delivery=delivery, name=name)
    members.activate(s, member, now(), "added by an admin")
    if welcome:
        ctx = commands.Context(s=s, cfg=cfg, lst=lst, site=Site.of(cfg.server), now=now(), address=address)
        welcome_reply(ctx, member)
        # Only the welcome: send_replies would add a "results" mail for commands nobody sent.
        for r in ctx.replies:
            notice(s, lst, ctx.site, address, r.template, ctx.now, **r.ctx)
    return "added"


def check_delivery(delivery: str) -> None:
    if delivery not in DELIVERIES:
        raise UsageError(f"--delivery {delivery!r} is not one of {', '.join(DELIVERIES)}")


@members_app.command("add")
@guarded
def members_add(name: str, addresses: list[str], config: ConfigOpt = None,
                delivery: Annotated[str, typer.Option(help="regular|digest|alumni")] = "regular",
                no_welcome: Annotated[bool, typer.Option("--no-welcome", help="Send no welcome mail.")] = False) -> None:
    """Add members directly (no confirmation round); they get a welcome mail unless --no-welcome."""
    from listserv.store import members

    cfg = config_from(config)
    lst = cfg.list(name)
    check_delivery(delivery)
    bad = [a for a in addresses if not is_valid_address(a)]
    if bad:
        raise UsageError(f"{bad[0]!r} is not an email address like 'ann@example.org'")
    with store_for(cfg).session() as s:
        members.ensure_list(s, lst.name, now())
        for address in addresses:
            result = add_one(s, cfg, lst, normalise(address), delivery, "", not no_welcome)
            out.print(f"{normalise(address)}: {result}")


@members_app.command("remove")
@guarded
def members_remove(name: str, addresses: list[str], config: ConfigOpt = None) -> None:
    """Remove members at once (no mail is sent)."""
    from listserv.store import members

    cfg = config_from(config)
    lst = cfg.list(name)
    missing = 0
    with store_for(cfg).session() as s:
        for address in addresses:
            m = members.get_member(s, lst.name, normalise(address))
            if m is None or m.status == "left":
                err.print(f"listserv: {normalise(address)} is not a member of {lst.name}", markup=False,
                          soft_wrap=True)
                missing += 1
                continue
            members.remove(s, m, now(), "removed by an admin")
            out.print(f"{m.address}: removed")
    if missing:
        raise typer.Exit(1)


@members_app.command("import")
@guarded
def members_import(name: str, file: Path, config: ConfigOpt = None,
                   no_welcome: Annotated[bool, typer.Option("--no-welcome")] = True) -> None:
    """Import members from a CSV with an 'address' column (optional 'name', 'delivery')."""
    from listserv.store import members

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
        members.ensure_list(s, lst.name, now())
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "address" not in [f.strip().lower() for f in reader.fieldnames]:
            raise UsageError(f"{file}: the first row must be a header with an 'address' column")
        task = progress.add_task(f"importing into {lst.name}", total=max(total, 0))
        for row in reader:
            progress.advance(task)
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            line = reader.line_num
            address, delivery = row.get("address", ""), (row.get("delivery") or "regular").lower()
            if not is_valid_address(address):
                err.print(f"{file}:{line}: {address!r} is not an email address; skipped", markup=False,
                          soft_wrap=True)
                bad += 1
                continue
            if delivery not in DELIVERIES:
                err.print(f"{file}:{line}: delivery {delivery!r} is not one of {', '.join(DELIVERIES)}; skipped",
                          markup=False, soft_wrap=True)
                bad += 1
                continue
            result = add_one(s, cfg, lst, normalise(address), delivery, row.get("name", ""), not no_welcome)
            added, skipped = added + (result == "added"), skipped + (result != "added")
    out.print(f"imported {added} member(s) into {lst.name}; {skipped} already there; {bad} bad row(s) skipped")


@members_app.command("export")
@guarded
def members_export(name: str, config: ConfigOpt = None) -> None:
    """Write the list's live members as CSV (address,name,delivery,status) to stdout."""
    from listserv.store import members

    cfg = config_from(config)
    lst = cfg.list(name)
    writer = csv.writer(sys.stdout)
    writer.writerow(["address", "name", "delivery", "status"])
    with store_for(cfg).session() as s:
        for m in members.list_members(s, lst.name):
            if m.status in ("active", "disabled"):
                writer.writerow([m.address, m.name, m.delivery, m.status])


# -- moderation ------------------------------------------------------------------------------

@app.command()
@guarded
def held(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Posts waiting for approval."""
    from listserv.store import posts

    cfg = config_from(config)
    with store_for(cfg).session() as s:
        rows = [{"id": p.id, "list": p.list_name, "sender": p.sender, "subject": p.subject,
                 "received_at": _iso(p.received_at), "reason": p.reason} for p in posts.held_posts(s)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No posts are waiting for approval.")
        return
    table = Table("id", "list", "sender", "subject", "received", "reason")
    for r in rows:
        table.add_row(str(r["id"]), r["list"], r["sender"], r["subject"], r["received_at"][:16], r["reason"])
    out.print(table)


def _held_post(s: Any, post_id: int) -> Any:
    from listserv.store.tables import Post

    post = s.get(Post, post_id)
    if post is None or post.status != "held":
        raise UsageError(f"there is no held post {post_id}; 'listserv held' lists them")
    return post


@app.command()
@guarded
def approve(post_id: int, config: ConfigOpt = None) -> None:
    """Release a held post to the list."""
    from listserv.dispatch import distribute
    from listserv.posting import Site

    cfg = config_from(config)
    with store_for(cfg).session() as s:
        post = _held_post(s, post_id)
        lst = cfg.list(post.list_name)
        count = distribute(s, lst, Site.of(cfg.server), post, now(), _dmarc(cfg))
    out.print(f"post {post_id} approved; queued for {count} member(s)")


@app.command()
@guarded
def reject(post_id: int, config: ConfigOpt = None) -> None:
    """Refuse a held post; the sender is told."""
    from listserv.notices import reply
    from listserv.posting import Site

    cfg = config_from(config)
    with store_for(cfg).session() as s:
        post = _held_post(s, post_id)
        lst = cfg.list(post.list_name)
        post.status = "rejected"
        s.add(post)
        if post.sender:
            reply(s, lst, Site.of(cfg.server), post.sender, "member/rejected.txt", now(),
                  subject=post.subject, reason="a moderator declined it")
    out.print(f"post {post_id} rejected; the sender has been told")


def _dmarc(cfg: Config) -> Any:
    from listserv.dmarc import DmarcPolicies, default_resolver

    return DmarcPolicies(default_resolver())


# -- digests and queue -----------------------------------------------------------------------

KindOpt = Annotated[str, typer.Option("--kind", help="regular|alumni")]


def _digest_config(name: str, config: str | None, kind: str) -> Config:
    """The config, after checking the list name and the digest kind (exit 2 when wrong)."""
    from listserv.digest_runs import KINDS

    cfg = config_from(config)
    cfg.list(name)
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    return cfg


@digest_app.command("send")
@guarded
def digest_send(name: str, config: ConfigOpt = None, kind: KindOpt = "regular") -> None:
    """Build and queue the digest for the period so far, now."""
    from listserv.digest_runs import run_digest

    cfg = _digest_config(name, config, kind)
    out.print(run_digest(store_for(cfg), cfg, name, kind, now()))


@digest_app.command("preview")
@guarded
def digest_preview(name: str, config: ConfigOpt = None, kind: KindOpt = "regular") -> None:
    """Print the digest the next run would send; sends and records nothing."""
    from listserv.digest_runs import preview

    cfg = _digest_config(name, config, kind)
    msg = preview(store_for(cfg), cfg, name, kind, now())
    if msg is None:
        out.print("Nothing to send: no posts (or, for alumni, no news) since the last digest.")
        return
    sys.stdout.write(msg.as_string())


@app.command("queue")
@guarded
def queue_(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Copies waiting to be delivered, and why."""
    from listserv.store import queue

    cfg = config_from(config)
    with store_for(cfg).session() as s:
        rows = [{"id": d.id, "recipient": d.recipient, "state": d.state, "attempts": d.attempts,
                 "next_attempt_at": _iso(d.next_attempt_at), "last_error": d.last_error,
                 "outbound_id": d.outbound_id} for d in queue.pending(s)]
        counts = queue.counts_by_state(s)
    if as_json:
        print_json(rows)
        return
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "empty"
    out.print(f"Queue: {summary}")
    if rows:
        table = Table("id", "recipient", "state", "attempts", "next attempt", "last error")
        for r in rows[:200]:
            table.add_row(str(r["id"]), r["recipient"], r["state"], str(r["attempts"]),
                          (r["next_attempt_at"] or "")[:19], r["last_error"] or "waiting for its first try")
        out.print(table)


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # raised before a command's own guard (e.g. while parsing)
        fail(str(exc), 2)
