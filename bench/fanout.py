"""Fan-out benchmark: one post to N members, personalized copies into a loopback sink.

    python bench/fanout.py [--members N] [--connections C] [--db sqlite|postgresql] [--keep]

A counting aiosmtpd sink runs in a separate process on 127.0.0.1. N active members are
bulk-inserted (not timed), listserv's Server is started in this process with the sink as its
relay, and one ~1 KB post is sent to the list with smtplib. We measure the SMTP transaction up
to the 250 answer after DATA, then the time from the start of that transaction until the sink
holds the N-th copy. Then, in the same run and against the same sink, a bare aiosmtplib client
pushes N pre-built messages over C connections (shared/anchors/sink/sink_limit.py): the ceiling
on this machine. Every copy must arrive exactly once, with its VERP envelope sender and its
per-member List-Unsubscribe; every delivery row must end up 'sent'.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import resource
import smtplib
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# --------------------------------------------------------------------------------------------
# The sink, in its own process
# --------------------------------------------------------------------------------------------


def sink_main(port: int, ready, conn, count, last) -> None:  # type: ignore[no-untyped-def]
    """Count every copy per recipient; answer 'report' (stats, then reset) and 'stop' on conn.

    count/last are shared Values the parent polls cheaply: copies so far and the monotonic time
    of the latest one (CLOCK_MONOTONIC is system-wide, so comparable with the parent's clock).
    """
    from aiosmtpd.controller import Controller

    lock = threading.Lock()
    state: dict = {}

    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def reset() -> None:
        state.update(cpu=cpu(), seen=set(), dups=0, bad_verp=0, no_unsub=0, bad_unsub=0, first=0.0)
        count.value = 0
        last.value = 0.0

    reset()
    suffix = f"@{common.DOMAIN}"
    mailto = f"<mailto:{common.LIST}-leave+".encode()

    class Handler:
        async def handle_DATA(self, server, session, env):  # type: ignore[no-untyped-def]
            now = time.monotonic()
            data = env.original_content or b""
            with lock:
                if not state["first"]:
                    state["first"] = now
                for rcpt in env.rcpt_tos:
                    if rcpt in state["seen"]:
                        state["dups"] += 1
                    else:
                        state["seen"].add(rcpt)
                    if env.mail_from.startswith(f"{common.LIST}-bounces+"):
                        local, _, host = rcpt.rpartition("@")
                        if env.mail_from != f"{common.LIST}-bounces+{local}={host}{suffix}":
                            state["bad_verp"] += 1
                        if (
                            b"\r\nList-Unsubscribe:" not in data
                            or b"List-Unsubscribe-Post:" not in data
                        ):
                            state["no_unsub"] += 1
                        elif (
                            mailto not in data
                        ):  # present, but the mailto is not a literal <mailto:...>
                            state["bad_unsub"] += 1
                count.value += len(env.rcpt_tos)
                last.value = now
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            if not conn.poll(600):  # the parent is gone or hung: do not linger forever
                break
            cmd = conn.recv()
            if cmd == "report":
                with lock:
                    conn.send(
                        dict(
                            count=count.value,
                            distinct=len(state["seen"]),
                            dups=state["dups"],
                            bad_verp=state["bad_verp"],
                            no_unsub=state["no_unsub"],
                            bad_unsub=state["bad_unsub"],
                            first=state["first"],
                            last=last.value,
                            cpu=cpu() - state["cpu"],
                        )
                    )
                    reset()
            else:
                break
    finally:
        controller.stop()


class SinkProcess:
    def __init__(self) -> None:
        ctx = mp.get_context("fork")
        self.port = common.free_port()
        self.count = ctx.Value("q", 0, lock=False)
        self.last = ctx.Value("d", 0.0, lock=False)
        ready = ctx.Event()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=sink_main, args=(self.port, ready, child, self.count, self.last), daemon=True
        )
        self.proc.start()
        if not ready.wait(20):
            raise RuntimeError("the sink did not start")

    def report(self) -> dict:
        self.conn.send("report")
        return self.conn.recv()

    def wait_for(self, n: int, timeout: float, abort: threading.Event | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count.value >= n:
                return True
            if abort is not None and abort.is_set():
                return False
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        try:
            self.conn.send("stop")
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


class _Count:
    value = 0


SMTP_SINK, SMTP_SOURCE = "/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"


class PostfixSink:
    """Postfix's smtp-sink (C) as the relay, counting DATA commands (-c); it keeps no copies, so
    only the count and the delivery rows are checked. Same interface as SinkProcess.

    smtp-sink prints its counter once per message. Read from a pipe, that woke a thread of this
    process (the listserv process) for every copy, and its CPU and GIL time were charged to
    listserv; the counter goes to a file instead, read every POLL seconds."""

    POLL = 0.005

    def __init__(self) -> None:
        import os
        import subprocess

        self.port = common.free_port()
        self.count = _Count()
        self.base = 0
        self.first = self.last = 0.0
        self.log = Path(tempfile.mkstemp(prefix="listserv-smtp-sink-", suffix=".log")[1])
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [SMTP_SINK, "-c", *user, f"127.0.0.1:{self.port}", "256"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._stopped = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        self.cpu0 = self.cpu()

    def _read(self) -> None:
        import re

        with self.log.open("rb") as log:
            pending = b""
            while not self._stopped.wait(self.POLL):
                pending += log.read()
                done, _, pending = pending.rpartition(b"\r")  # whole counter lines only
                found = re.findall(rb"mesg=(\d+)", done[-64:])
                if found and int(found[-1]) - self.base != self.count.value:
                    now = time.monotonic()
                    self.count.value = int(found[-1]) - self.base
                    if not self.first and self.count.value:
                        self.first = now
                    self.last = now

    def cpu(self) -> float:
        import os

        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    wait_for = SinkProcess.wait_for

    def report(self) -> dict:
        time.sleep(0.3)  # the counter line of the last copy
        n, cpu = self.count.value, self.cpu()
        stats = dict(
            count=n, distinct=n, dups=0, bad_verp=0, no_unsub=0, bad_unsub=0,
            first=self.first, last=self.last, cpu=cpu - self.cpu0,
        )  # fmt: skip
        self.base += n
        self.count.value, self.first, self.cpu0 = 0, 0.0, cpu
        return stats

    def stop(self) -> None:
        self._stopped.set()
        self.proc.kill()
        self.proc.wait(5)
        self.log.unlink(missing_ok=True)


def smtp_source(port: int, n: int, conns: int) -> tuple[float, float]:
    """smtp-source, Postfix's C client: n ~1 KB messages to distinct recipients over conns
    sessions kept open (-d); returns (seconds, CPU seconds)."""
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(
        [SMTP_SOURCE, "-d", "-N", "-s", str(conns), "-m", str(n), "-l", "1100"]
        + ["-f", "bench-bounces@lists.test", "-t", "member@example.net", f"127.0.0.1:{port}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return dt, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


# --------------------------------------------------------------------------------------------
# listserv
# --------------------------------------------------------------------------------------------


def make_post(sender: str) -> bytes:
    body = (
        "Hi all, the county workforce board is hosting a resume workshop next Thursday at\r\n"
        "the library annex, 6 pm. Bring a printed copy; volunteers will review it one on one.\r\n"
        "They also have a list of employers hiring for warehouse, logistics and office roles.\r\n"
        "Parking is free after 5. If anyone wants to carpool from the east side, reply here.\r\n"
        "\r\n"
    ) * 3 + "See you there,\r\nAnn\r\n"
    head = (
        f"From: Ann Member <{sender}>\r\n"
        f"To: {common.LIST}@{common.DOMAIN}\r\n"
        f"Subject: Resume workshop next Thursday\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: {make_msgid(domain='example.net')}\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 7bit\r\n"
    )
    return (head + "\r\n" + body).encode()


def send_post(port: int, sender: str, raw: bytes) -> tuple[float, float, float]:
    """(start, end) monotonic times of MAIL FROM .. 250-after-DATA, and the DATA phase alone."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo()
        t0 = time.monotonic()
        code, msg = client.mail(sender)
        assert code == 250, (code, msg)
        code, msg = client.rcpt(f"{common.LIST}@{common.DOMAIN}")
        assert code == 250, (code, msg)
        td = time.monotonic()
        code, msg = client.data(raw)
        t1 = time.monotonic()
        if code != 250:
            raise RuntimeError(f"the post was refused: {code} {msg!r}")
    return t0, t1, t1 - td


async def run_listserv(cfg, sink: SinkProcess | PostfixSink, n: int) -> dict:  # type: ignore[no-untyped-def]
    from listserv.dmarc import DmarcPolicies
    from listserv.server import Server

    def no_dns(name: str):  # type: ignore[no-untyped-def]
        import dns.resolver

        raise dns.resolver.NXDOMAIN()

    class Errors(logging.Handler):  # an ERROR from listserv (a failed inbound pass) ends the wait
        def emit(self, record: logging.LogRecord) -> None:
            failed.set()

    failed = threading.Event()
    errors = Errors(logging.ERROR)
    logging.getLogger("listserv").addHandler(errors)
    srv = Server(cfg, dmarc=DmarcPolicies(no_dns))
    await srv.start()
    rss_started = common.peak_rss_mb()
    try:
        cpu0 = cpu_seconds()
        t0, t250, data_phase = await asyncio.to_thread(
            send_post, srv.smtp_port, common.address(0), make_post(common.address(0))
        )
        timeout = max(120.0, n / 200)
        done = await asyncio.to_thread(sink.wait_for, n, timeout, failed)
        cpu = cpu_seconds() - cpu0
        await asyncio.sleep(1.0)  # late duplicates would show up here
    finally:
        await srv.stop()
        logging.getLogger("listserv").removeHandler(errors)
    stats = sink.report()
    stats.update(
        t0=t0,
        t250=t250,
        data_phase=data_phase,
        done=done,
        timeout=timeout,
        aborted=failed.is_set(),
        rss_started=rss_started,
        own_cpu=cpu,
    )
    return stats


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def delivery_states(url: str) -> dict[str, int]:
    from listserv.store import open_store
    from listserv.store import outbound as queue

    store = open_store(url)
    try:
        with store.session() as s:
            return queue.counts_by_state(s)
    finally:
        store.dispose()


# --------------------------------------------------------------------------------------------
# The bare-client ceiling (shared/anchors/sink/sink_limit.py, in-process)
# --------------------------------------------------------------------------------------------


async def push(port: int, n: int, conns: int) -> float:
    import aiosmtplib

    body = "Body line of a normal post.\r\n" * 40
    q: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        q.put_nowait(i)

    async def worker() -> None:
        s = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await s.connect()
        while True:
            try:
                i = q.get_nowait()
            except asyncio.QueueEmpty:
                break
            rcpt = f"user{i:07d}@example.net"
            msg = (
                f"From: poster@example.org\r\nTo: {rcpt}\r\nSubject: [bench] hello\r\n"
                f"List-Unsubscribe: <http://x/u/{i:032d}>\r\n\r\n{body}"
            )
            await s.sendmail(f"bench-bounces+{i}@lists.test", [rcpt], msg)
        await s.quit()

    t, cpu0 = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return time.perf_counter() - t, cpu_seconds() - cpu0


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the bare-client measurement")
    ap.add_argument(
        "--sink",
        choices=("aiosmtpd", "smtp-sink"),
        default="aiosmtpd",
        help="smtp-sink: Postfix's C sink, with smtp-source (C client) as the ceiling",
    )
    args = ap.parse_args()
    postfix = args.sink == "smtp-sink"
    if postfix and not (Path(SMTP_SINK).exists() and Path(SMTP_SOURCE).exists()):
        print(
            f"skipped: --sink smtp-sink needs {SMTP_SINK} and {SMTP_SOURCE} (Debian: apt-get "
            "install postfix, then stop the system postfix it starts)"
        )
        return 0
    n, conns = args.members, args.connections
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    folder = Path(tempfile.mkdtemp(prefix="listserv-fanout-"))
    sink: SinkProcess | PostfixSink = PostfixSink() if postfix else SinkProcess()
    db = None
    ok = True
    try:
        db = common.Database(args.db, folder)
        cfg = common.write_config(folder, db.url, sink.port, conns)
        setup = common.in_child(common.insert_members, cfg.database_url, n)
        print(
            f"setup: {n} members inserted in {setup:.1f} s ({args.db}, {conns} connections, "
            f"folder {folder})",
            flush=True,
        )

        st = asyncio.run(run_listserv(cfg, sink, n))
        rss = common.peak_rss_mb()
        states = delivery_states(cfg.database_url)
        if not st["done"]:
            why = (
                "listserv logged an error"
                if st["count"] < n and st["aborted"]
                else f"timed out after {st['timeout']:.0f} s"
            )
            print(f"FAILED: only {st['count']} of {n} copies ({why})")
            ok = False
            if not st["count"]:
                return 1
        total = st["last"] - st["t0"]
        rate = n / total if total > 0 else float("nan")
        problems = []
        if st["distinct"] != n:
            problems.append(f"{st['distinct']} distinct recipients, expected {n}")
        if st["dups"]:
            problems.append(f"{st['dups']} duplicate copies")
        if st["bad_verp"]:
            problems.append(f"{st['bad_verp']} copies with a wrong VERP sender")
        if st["no_unsub"]:
            problems.append(f"{st['no_unsub']} copies without List-Unsubscribe")
        if st["bad_unsub"]:
            problems.append(
                f"{st['bad_unsub']} copies whose List-Unsubscribe lacks a literal "
                f"<mailto:{common.LIST}-leave+TOKEN@...> (RFC 2047-encoded?)"
            )
        if states.get("sent", 0) != n or len(states) != 1:
            problems.append(f"delivery rows by state {states}, expected {{'sent': {n}}}")
        ok = ok and not problems
        print(
            f"check: {st['count']} copies, "
            + ("(smtp-sink keeps no copies: count and rows only), " if postfix else "")
            + f"{st['distinct']} distinct recipients, {st['dups']} duplicates, "
            f"delivery rows {states}: "
            + ("OK" if not problems else "FAILED: " + "; ".join(problems))
        )

        line = (
            f"fanout: {n} members, time-to-250 {st['t250'] - st['t0']:.3f} s "
            f"(DATA phase {st['data_phase']:.3f} s), {st['count']} copies in {total:.1f} s "
            f"= {rate:.0f} deliveries/s (first copy after {st['first'] - st['t0']:.2f} s), "
            f"peak RSS {rss:.0f} MB (after start {st['rss_started']:.0f} MB)"
        )
        anchor = "smtp-source" if postfix else "bare-client"
        if not args.no_ceiling:
            if postfix:
                dt, ccpu = smtp_source(sink.port, n, conns)
            else:
                dt, ccpu = asyncio.run(push(sink.port, n, conns))
            ceiling = n / dt
            cst = sink.report()
            if cst["count"] != n:
                print(f"warning: the ceiling run delivered {cst['count']} of {n}")
            line += (
                f"; {anchor} ceiling {ceiling:.0f}/s over {conns} connections -> listserv at "
                f"{rate / ceiling:.2f} of it, {rate / common.MAILMAN_PERSONALIZED:.0f}x Mailman "
                f"({common.MAILMAN_PERSONALIZED}/s)"
            )
        else:
            line += f"; {rate / common.MAILMAN_PERSONALIZED:.0f}x Mailman ({common.MAILMAN_PERSONALIZED}/s)"
        print(line, flush=True)
        cpu_line = (
            f"cpu: listserv {st['own_cpu']:.1f} s ({1e6 * st['own_cpu'] / n:.0f} us/copy), "
            f"sink {st['cpu']:.1f} s during the fan-out"
        )
        if not args.no_ceiling:
            cpu_line += (
                f"; {anchor} {ccpu:.1f} s ({1e6 * ccpu / n:.0f} us/copy), "
                f"sink {cst['cpu']:.1f} s during the ceiling run"
            )
        print(cpu_line, flush=True)
    finally:
        sink.stop()
        common.clean_up(folder, db, args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
