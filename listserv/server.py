"""The composition root: `listserv serve` wires SMTP/LMTP intake, the inbound worker, delivery,
HTTP and the scheduler into one event loop. Nothing else imports this module but the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from listserv.bounces import score as bounces
from listserv.config import Config, load_config, split_hostport
from listserv.delivery import Deliverer
from listserv.dmarc import DmarcPolicies, default_resolver
from listserv.errors import ConfigError
from listserv.inbound import InboundWorker, Writer
from listserv.instances import make_instance_id
from listserv.metrics import Metrics
from listserv.scheduler import Scheduler
from listserv.sender_auth import SenderAuths, TxtLookup
from listserv.smtp import Handler, protocol_factory
from listserv.store import Store, open_store
from listserv.web import make_app

log = logging.getLogger("listserv.server")

SWITCH_INTERVAL = 0.0005  # seconds; see serve()
STOP_TIMEOUT = 8.0  # SIGTERM: copies in flight finish within this, inside systemd's patience


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
    """Everything `serve` runs; tests start it in-process with their own DMARC resolver and
    DKIM key lookup (dkim_txt: a sender_auth.TxtLookup)."""

    def __init__(
        self,
        cfg: Config,
        *,
        dmarc: DmarcPolicies | None = None,
        dkim_txt: TxtLookup | None = None,
    ) -> None:
        self.cfg = cfg
        self.instance_id = make_instance_id()
        self.store: Store = open_store(cfg.database_url, upgrade=cfg.server.auto_upgrade)
        self.dmarc = dmarc if dmarc is not None else DmarcPolicies(default_resolver())
        self.deliverer = Deliverer(
            self.store,
            self.config,
            on_failure=bounces.delivery_failed,
            instance_id=self.instance_id,
        )
        self.inbound = InboundWorker(
            self.store,
            self.config,
            self.dmarc,
            self.deliverer,
            SenderAuths(dkim_txt),
            self.instance_id,
        )
        self.writer = Writer(self.store, self.inbound.hand, self.instance_id)
        self.scheduler = Scheduler(
            self.store, self.config, self.deliverer.wake, instance_id=self.instance_id
        )
        self.metrics = Metrics(self.store, lambda: self.config().lists)
        self.stop_event = asyncio.Event()
        self.smtp_server: asyncio.Server | None = None
        self.http: _EmbeddedUvicorn | None = None
        self.tasks: list[asyncio.Task] = []

    def config(self) -> Config:
        """The current config: every part reads it through here, so a reload reaches all."""
        return self.cfg

    def health(self) -> list[str]:
        """What is down, for /healthz; empty when all is well."""
        problems = []
        if not self.store.ping():
            problems.append("store unreachable")
        if not self.scheduler.running:
            problems.append("scheduler stopped")
        return problems

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        ensure_secret(cfg.resolve(cfg.server.secret_file))
        host, port = split_hostport(cfg.server.listen)
        handler = Handler(self.config, self.writer.save)
        loop = asyncio.get_running_loop()
        self.smtp_server = await loop.create_server(protocol_factory(cfg, handler), host, port)
        http_host, http_port = split_hostport(cfg.server.http_listen)
        self.http = _EmbeddedUvicorn(
            uvicorn.Config(
                make_app(
                    self.store,
                    self.config,
                    self.deliverer.wake,
                    self.health,
                    metrics=self.metrics.exposition,
                ),
                host=http_host,
                port=http_port,
                lifespan="off",
                log_level="warning",
                access_log=False,
            )
        )
        self.scheduler.start()
        self.tasks = [
            asyncio.create_task(self.http.serve(), name="http"),
            asyncio.create_task(self.inbound.run(self.stop_event), name="inbound"),
            asyncio.create_task(self.deliverer.run(self.stop_event), name="delivery"),
        ]
        self._write_pid()
        log.info(
            "listserv %s serving %s on %s (%s), http on %s, %d list(s)",
            self.instance_id,
            cfg.server.domain,
            cfg.server.listen,
            cfg.server.protocol,
            cfg.server.http_listen,
            len(cfg.lists),
        )

    @property
    def smtp_port(self) -> int:
        assert self.smtp_server is not None
        return self.smtp_server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.stop_event.set()
        self.inbound.wake()
        self.deliverer.wake()
        if self.smtp_server is not None:
            self.smtp_server.close()
        if self.http is not None:
            self.http.should_exit = True
        self.scheduler.shutdown()
        # Delivery finishes only the copies in flight (issue 10); past the timeout even those are
        # cut off, left claimed by this instance, and taken back when it starts again.
        _done, late = (
            await asyncio.wait(self.tasks, timeout=STOP_TIMEOUT) if self.tasks else (set(), set())
        )
        for task in late:
            log.warning(
                "stopping: %s did not finish in %.0fs; cancelled", task.get_name(), STOP_TIMEOUT
            )
            task.cancel()
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
        self.scheduler.replan()
        log.info("config reloaded from %s: %d list(s)", new.path, len(new.lists))

    def _write_pid(self) -> None:
        pid_file = self.cfg.resolve(self.cfg.server.pid_file)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")


async def serve(cfg: Config) -> None:
    # The event loop answering SMTP waits for the GIL behind the writer thread's dispatch; at
    # Python's default 5 ms a switch it waits longer. Kept because it helps what issue 12
    # targets, the 250s: in two same-session A/Bs (bench/ingest.py --posts 300, 3 alternating
    # runs each, medians) 20 concurrent clients got 198 and 206 accepted/s with it, 147 and
    # 149 without; one client is the same either way (66/63, 80/80 on new connections). Its
    # cost: in the 20-client phase the copies finish later (366 and 302 copies/s against 417
    # and 584), as intake takes the GIL from delivery. Process-wide: only `serve` sets it.
    sys.setswitchinterval(SWITCH_INTERVAL)
    await Server(cfg).run_forever()
