"""Running the server: serve, demo, check-config, reload."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from listserv.cli.common import ConfigOpt, app, config_from, fail, guarded, out


@app.command()
@guarded
def serve(
    config: ConfigOpt = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Also log every SMTP line and scheduler step (debugging)."
        ),
    ] = False,
) -> None:
    """Run everything: inbound SMTP/LMTP, HTTP, scheduler and delivery, in one process."""
    from listserv.server import serve as run

    cfg = config_from(config)
    setup_logging(cfg.server.log_level, verbose)
    asyncio.run(run(cfg))


# Libraries that narrate every step at INFO: aiosmtpd logs each SMTP line (and an "Available
# AUTH mechanisms" line although listserv offers no AUTH), APScheduler each job it plans.
CHATTY_LOGGERS = ("mail.log", "apscheduler")


def setup_logging(level: str, verbose: bool = False) -> None:
    """listserv's own lines at the configured level; chatty libraries at WARNING unless verbose."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level.upper() if verbose else logging.WARNING)
    smtp_log = logging.getLogger("mail.log")
    if not any(isinstance(f, NoAuthNote) for f in smtp_log.filters):
        smtp_log.addFilter(NoAuthNote())


class NoAuthNote(logging.Filter):
    """Drop aiosmtpd's per-connection 'Available AUTH mechanisms: LOGIN PLAIN': listserv
    never offers AUTH (it is not advertised without TLS), so the line only misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Available AUTH mechanisms")


@app.command()
@guarded
def demo(
    folder: Annotated[Path, typer.Option(help="Where to put the demo list.")] = Path(
        "listserv-demo"
    ),
) -> None:
    """A short tour: a list with three members, a post, and a "I got a job" leave, as .eml files."""
    from listserv.demo import run_demo

    files = asyncio.run(run_demo(folder))
    out.print(f"The demo list lives in {folder}/ (config: {folder}/listserv.toml).")
    out.print(
        f"{len(files)} message(s) were written to {folder}/var/outbox/ instead of being sent:"
    )
    for f in files:
        out.print(f"  {f}")
    out.print(
        "Open the one to bob@example.net: he said he got a job, so he was switched to alumni mode."
    )


@app.command("check-config")
@guarded
def check_config(config: ConfigOpt = None) -> None:
    """Validate the config file; exit 2 naming the key and the problem."""
    cfg = config_from(config)
    names = ", ".join(sorted(cfg.lists)) or "none"
    out.print(f"{cfg.path}: OK, {len(cfg.lists)} list(s): {names}")


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
