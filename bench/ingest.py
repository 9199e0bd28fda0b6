"""Ingest benchmark: posts accepted and delivered per second, and how long one huge message stalls others.

    python bench/ingest.py [--posts N] [--db sqlite|postgresql] [--big-mb 8] [--keep]

`listserv serve` runs as its own process (a black box), relaying to a counting aiosmtpd sink in
another process. Phases, one run:

- new:    N posts one after another from the list's only member, a new SMTP connection each;
- reused: N posts over one connection;
- 20x:    20 concurrent clients x 50 posts (--each) to a 10-member list;
- big:    one message with an 8 MB folded header from a stranger while the member posts once a
          second; we print how much later than usual the member's posts arrived.

accepted/s counts until the last 250; delivered/s until the sink holds every copy. Every copy
must arrive exactly once (by Message-ID and recipient); the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

MAILMAN = {"new": (56, 12), "reused": (69, None)}  # accepted/s, delivered/s (issue 12)
LISTADDR = f"{common.LIST}@{common.DOMAIN}"


def sink_main(port: int, ready, conn) -> None:  # type: ignore[no-untyped-def]
    """Record (message-id, recipient) of every copy with its arrival time; report on request."""
    import re

    from aiosmtpd.controller import Controller

    lock = threading.Lock()
    seen: dict[tuple[bytes, str], float] = {}
    dups = [0]
    mid = re.compile(rb"(?im)^message-id:\s*(<[^>]*>)")

    class Handler:
        async def handle_DATA(self, server, session, env):  # type: ignore[no-untyped-def]
            now = time.monotonic()
            m = mid.search(env.original_content or b"")
            key_id = m.group(1) if m else b""
            with lock:
                for rcpt in env.rcpt_tos:
                    if (key_id, rcpt) in seen:
                        dups[0] += 1
                    else:
                        seen[(key_id, rcpt)] = now
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while conn.poll(900):
            cmd = conn.recv()
            if cmd == "stop":
                break
            with lock:
                if cmd == "count":
                    conn.send((len(seen), dups[0]))
                else:  # report: everything, then reset
                    conn.send((dict(seen), dups[0]))
                    seen.clear()
                    dups[0] = 0
    finally:
        controller.stop()


class Sink:
    def __init__(self) -> None:
        ctx = mp.get_context("fork")
        self.port = common.free_port()
        ready = ctx.Event()
        self.conn, child = ctx.Pipe()
        self.lock = threading.Lock()
        self.proc = ctx.Process(target=sink_main, args=(self.port, ready, child), daemon=True)
        self.proc.start()
        if not ready.wait(20):
            raise RuntimeError("the sink did not start")

    def ask(self, cmd: str):  # type: ignore[no-untyped-def]
        with self.lock:
            self.conn.send(cmd)
            return self.conn.recv()

    def wait_for(self, n: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ask("count")[0] >= n:
                return time.monotonic()
            time.sleep(0.01)
        return None

    def stop(self) -> None:
        self.conn.send("stop")
        self.proc.join(10)


def post(sender: str, subject: str = "Resume workshop next Thursday") -> tuple[str, bytes]:
    msgid = make_msgid(domain="example.net")
    body = "The county workforce board hosts a resume workshop next Thursday, 6 pm.\r\n" * 8
    raw = (
        f"From: <{sender}>\r\nTo: {LISTADDR}\r\nSubject: {subject}\r\nMessage-ID: {msgid}\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    return msgid, raw.encode()


def send_new(port: int, sender: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
        client.sendmail(sender, [LISTADDR], raw)


def start_server(
    folder: Path, url: str, sink_port: int, extra: str = ""
) -> tuple[subprocess.Popen, int]:
    port = common.free_port()
    text = common.config_text(url, sink_port).replace(
        'listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"\n{extra}', 1
    )
    (folder / "listserv.toml").write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "listserv", "serve", "--config", str(folder / "listserv.toml")],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(common.ROOT)},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
                c.noop()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("listserv did not start")


def sequential(port: int, sink: Sink, n: int, reuse: bool) -> tuple[float, float, int]:
    sender = common.address(0)
    msgs = [post(sender)[1] for _ in range(n)]
    t0 = time.monotonic()
    if reuse:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
            for raw in msgs:
                client.sendmail(sender, [LISTADDR], raw)
    else:
        for raw in msgs:
            send_new(port, sender, raw)
    t250 = time.monotonic()
    done = sink.wait_for(n, 120)
    seen, dups = sink.ask("report")
    return n / (t250 - t0), n / ((done or time.monotonic()) - t0), len(seen) - n + dups


def concurrent(port: int, sink: Sink, clients: int, each: int, members: int) -> tuple:
    sender = common.address(0)
    batches = [[post(sender)[1] for _ in range(each)] for _ in range(clients)]

    def client(msgs: list[bytes]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as c:
            for raw in msgs:
                c.sendmail(sender, [LISTADDR], raw)

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, batches))
    t250 = time.monotonic()
    n = clients * each
    done = sink.wait_for(n * members, 300)
    seen, dups = sink.ask("report")
    return n / (t250 - t0), n * members / ((done or time.monotonic()) - t0), len(seen), dups


def big_header(port: int, sink: Sink, mb: int, seconds: int) -> tuple[list[float], str, float]:
    """The member posts once a second; the stranger sends one mb-MB folded header at 2 s."""
    sender = common.address(0)
    line = " fold of a long header, padding padding padding padding padding padding\r\n"
    folded = "X-Big: start\r\n" + line * (mb * 1024 * 1024 // len(line))
    huge = (
        f"From: <stranger@example.com>\r\nTo: {LISTADDR}\r\nSubject: big\r\n"
        f"Message-ID: {make_msgid(domain='example.com')}\r\n{folded}\r\nbody\r\n"
    ).encode()
    answer: list[str] = []

    def send_huge() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=600) as c:
                c.sendmail("stranger@example.com", [LISTADDR], huge)
            answer.append("250")
        except smtplib.SMTPResponseException as exc:
            answer.append(f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}")
        except smtplib.SMTPException as exc:
            answer.append(str(exc))

    sent: dict[bytes, float] = {}
    worst_accept = 0.0
    big = threading.Thread(target=send_huge)
    start = time.monotonic()
    for i in range(seconds):
        time.sleep(max(0.0, start + i - time.monotonic()))
        if i == 2:
            big.start()
        msgid, raw = post(sender, f"post {i}")
        t = time.monotonic()
        send_new(port, sender, raw)
        worst_accept = max(worst_accept, time.monotonic() - t)
        sent[msgid.encode()] = t
    big.join()
    sink.wait_for(seconds, 60)  # owner notices count too: give the last posts time to arrive
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sink.ask("count")[0] < seconds + 2:
        time.sleep(0.05)
    time.sleep(1.0)
    seen, _ = sink.ask("report")
    delays = [seen.get((m, sender), float("inf")) - t for m, t in sent.items()]
    return delays, answer[0] if answer else "?", worst_accept


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--posts", type=int, default=400)
    ap.add_argument("--each", type=int, default=50, help="posts per client in the 20-client phase")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--big-mb", type=int, default=8)
    ap.add_argument("--big-seconds", type=int, default=12)
    ap.add_argument(
        "--accept-big",
        action="store_true",
        help="raise max_header_bytes so the big header is accepted and handled, not refused",
    )
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="listserv-ingest-"))
    sink = Sink()
    db = common.Database(args.db, folder)
    proc = None
    ok = True
    try:
        common.in_child(common.insert_members, db.url, 1)
        extra = "max_header_bytes = 33554432\n" if args.accept_big else ""
        proc, port = start_server(folder, db.url, sink.port, extra)
        if os.environ.get("BENCH_PROFILE"):  # a py-spy profile of the server's first 20 s
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--idle",
                    "-p",
                    str(proc.pid),
                    "-d",
                    "15",
                    "-r",
                    "100",
                    "-f",
                    "raw",
                ]
                + ["-o", os.environ["BENCH_PROFILE"]]
            )
        send_new(port, common.address(0), post(common.address(0))[1])  # warm up
        sink.wait_for(1, 30)
        sink.ask("report")
        for label, reuse in (("new", False), ("reused", True)):
            acc, dlv, bad = sequential(port, sink, args.posts, reuse)
            mm_acc, mm_dlv = MAILMAN[label]
            vs = f"{acc / mm_acc:.1f}x Mailman {mm_acc}/s"
            dvs = f" ({dlv / mm_dlv:.1f}x Mailman {mm_dlv}/s)" if mm_dlv else ""
            print(
                f"ingest {label:6} connection, 1 client, {args.posts} posts, 1 member: "
                f"{acc:.0f} accepted/s ({vs}), {dlv:.0f} delivered/s{dvs}"
                + (f"; {bad} lost or duplicated" if bad else ""),
                flush=True,
            )
            ok = ok and not bad
        common.in_child(add_members, db.url, 9)
        each = args.each
        acc, dlv, distinct, dups = concurrent(port, sink, 20, each, 10)
        lost = 20 * each * 10 - distinct
        print(
            f"ingest 20 concurrent clients x {each} posts, 10 members: {acc:.0f} accepted/s, "
            f"{dlv:.0f} copies delivered/s; {lost} lost, {dups} duplicated",
            flush=True,
        )
        ok = ok and not lost and not dups
        common.in_child(remove_members, db.url)
        usual = []
        for _ in range(5):
            msgid, raw = post(common.address(0))
            t = time.monotonic()
            send_new(port, common.address(0), raw)
            sink.wait_for(1, 30)
            usual.append(time.monotonic() - t)
            sink.ask("report")
        base = sorted(usual)[len(usual) // 2]
        delays, answer, worst_accept = big_header(port, sink, args.big_mb, args.big_seconds)
        worst = max(delays)
        print(
            f"big header: one {args.big_mb} MB folded header from a stranger answered "
            f"{answer!r}; the member's {len(delays)} posts (one a second) arrived at worst "
            f"{worst:.2f} s after sending (usual {base:.2f} s): delayed {worst - base:.2f} s; "
            f"slowest 250 {worst_accept:.2f} s",
            flush=True,
        )
        ok = ok and worst - base <= 1.0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        sink.stop()
        common.clean_up(folder, db, args.keep)
    return 0 if ok else 1


def add_members(url: str, n: int) -> None:
    from datetime import UTC, datetime

    from listserv.store import members, open_store

    store = open_store(url)
    with store.session() as s:
        for i in range(1, n + 1):
            m = members.upsert_member(
                s, common.LIST, common.address(i), datetime.now(UTC), status="pending"
            )
            members.activate(s, m, datetime.now(UTC), "bench")
    store.dispose()


def remove_members(url: str) -> None:
    from sqlalchemy import delete

    from listserv.store import open_store
    from listserv.store.tables import Member

    store = open_store(url)
    with store.session() as s:
        s.execute(delete(Member).where(Member.address != common.address(0)))  # type: ignore[arg-type]
    store.dispose()


if __name__ == "__main__":
    sys.exit(main())
