"""`listserv serve`: inbound SMTP/LMTP, HTTP, the scheduler and delivery in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from listserv import bouncing, dispatch
from listserv.config import Config, load_config, split_hostport
from listserv.delivery import Deliverer
from listserv.dmarc import DmarcPolicies, default_resolver
from listserv.errors import ConfigError
from listserv.smtp import Handler, protocol_factory
from listserv.store import Store, open_store, posts

log = logging.getLogger("listserv.server")

INBOUND_LEASE = timedelta(minutes=5)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn sharing our loop: the server, not uvicorn, owns the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def ensure_secret(path: Path) -> bytes:
    """The server secret, created (mode 600) on first start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    return path.read_bytes().strip()


class Server:
    """Everything `serve` runs; tests start it in-process with their own DMARC resolver."""

    def __init__(self, cfg: Config, *, dmarc: DmarcPolicies | None = None) -> None:
        self.cfg = cfg
        self.store: Store = open_store(cfg.database_url)
        self.dmarc = dmarc if dmarc is not None else DmarcPolicies(default_resolver())
        self.deliverer = Deliverer(self.store, lambda: self.cfg, on_failure=bouncing.delivery_failed)
        self.inbound_wakeup = asyncio.Event()
        self.stop_event = asyncio.Event()
        self.smtp_server: asyncio.AbstractServer | None = None
        self.http: _EmbeddedUvicorn | None = None
        self.scheduler = None
        self.tasks: list[asyncio.Task] = []

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        from listserv.scheduler import Scheduler
        from listserv.web import make_app

        cfg = self.cfg
        ensure_secret(cfg.resolve(cfg.server.secret_file))
        host, port = split_hostport(cfg.server.listen)
        handler = Handler(lambda: self.cfg, self.store, self.inbound_wakeup.set)
        loop = asyncio.get_running_loop()
        self.smtp_server = await loop.create_server(protocol_factory(cfg, handler), host, port)
        http_host, http_port = split_hostport(cfg.server.http_listen)
        self.http = _EmbeddedUvicorn(uvicorn.Config(
            make_app(self), host=http_host, port=http_port, lifespan="off",
            log_level="warning", access_log=False))
        self.scheduler = Scheduler(self)
        self.scheduler.start()
        self.tasks = [
            asyncio.create_task(self.http.serve(), name="http"),
            asyncio.create_task(self._inbound_loop(), name="inbound"),
            asyncio.create_task(self.deliverer.run(self.stop_event), name="delivery"),
        ]
        self._write_pid()
        log.info("listserv serving %s on %s (%s), http on %s, %d list(s)", cfg.server.domain,
                 cfg.server.listen, cfg.server.protocol, cfg.server.http_listen, len(cfg.lists))

    @property
    def smtp_port(self) -> int:
        assert self.smtp_server is not None
        return self.smtp_server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.stop_event.set()
        self.inbound_wakeup.set()
        self.deliverer.wake()
        if self.smtp_server is not None:
            self.smtp_server.close()
        if self.http is not None:
            self.http.should_exit = True
        if self.scheduler is not None:
            self.scheduler.shutdown()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.cfg.resolve(self.cfg.server.pid_file).unlink()
        self.store.dispose()

    async def run_forever(self) -> None:
        """Serve until SIGTERM/SIGINT; SIGHUP re-reads the config."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop_event.set)
        loop.add_signal_handler(signal.SIGINT, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        await self.start()
        await self.stop_event.wait()
        log.info("listserv stopping")
        await self.stop()

    def reload(self) -> None:
        """Re-read the config file; a bad file is refused and the old config kept."""
        try:
            new = load_config(self.cfg.path)
        except ConfigError as exc:
            log.error("reload refused, keeping the old config: %s", exc)
            return
        if new.database_url != self.cfg.database_url or new.server.listen != self.cfg.server.listen:
            log.warning("reload: database and listen addresses change only on restart")
        self.cfg = new
        if self.scheduler is not None:
            self.scheduler.replan()
        log.info("config reloaded from %s: %d list(s)", new.path, len(new.lists))

    def _write_pid(self) -> None:
        pid_file = self.cfg.resolve(self.cfg.server.pid_file)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")

    # -- inbound ---------------------------------------------------------------

    async def _inbound_loop(self) -> None:
        while not self.stop_event.is_set():
            # Clear before the pass, not after: a wake-up (a new message, or stop) that comes
            # while the pass runs must not be lost, or we would sleep a full second on it.
            self.inbound_wakeup.clear()
            try:
                handled = await asyncio.to_thread(self.process_inbound)
            except Exception:  # noqa: BLE001 - keep serving; the message stays stored
                log.exception("inbound pass failed; retrying shortly")
                handled = 0
            if handled:
                self.deliverer.wake()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.inbound_wakeup.wait(), timeout=1.0)

    def process_inbound(self) -> int:
        """Handle stored messages; each in its own transaction with its effects (blocking)."""
        with self.store.session() as s:
            rows = posts.claim_inbound(s, datetime.now(UTC), INBOUND_LEASE)
        for row in rows:
            try:
                with self.store.session() as s:
                    dispatch.handle_inbound(s, self.cfg, row, datetime.now(UTC), self.dmarc)
                    posts.finish_inbound(s, row.id)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - log, keep the message, go on with the next
                log.exception("could not handle inbound message %s", row.id)
                with self.store.session() as s:
                    posts.finish_inbound(s, row.id, error=f"{type(exc).__name__}: {exc}")  # type: ignore[arg-type]
        return len(rows)


async def serve(cfg: Config) -> None:
    await Server(cfg).run_forever()
