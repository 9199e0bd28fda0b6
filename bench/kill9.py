"""kill -9 during a fan-out: copies lost, copies duplicated, time to drain after the restart.

    python bench/kill9.py [--members 5000] [--trials 3] [--connections 4] [--kill-at 0.5]
                          [--pipelining]

`listserv serve` runs as a process (SQLite, the shipped settings) with an aiosmtpd sink in this
process as its relay. One post goes to N members; when the sink holds kill-at x N copies the
server gets SIGKILL, and is started again at once on the same database. We count, per trial:
members with no copy (lost), members with two or more (duplicated), and the seconds from the
restart until the N-th distinct member has a copy. Then a second post, and SIGTERM when a
tenth of it is out: the seconds until the process exits.
--pipelining: the sink offers PIPELINING (aiosmtpd handles pipelined commands but does not say
so), so each copy's envelope goes out with the previous copy's end, as against smtp-sink.
Issue 10 measured before this work: 0 lost, 64-156 duplicated, the rest after the 2-minute lease.
"""

from __future__ import annotations

import argparse
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


class Sink:
    def __init__(self, pipelining: bool = False) -> None:
        self.lock = threading.Lock()
        self.copies: Counter[str] = Counter()
        self.pipelining = pipelining

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, env):  # type: ignore[no-untyped-def]
        with self.lock:
            for rcpt in env.rcpt_tos:
                self.copies[rcpt] += 1
        return "250 OK"

    def distinct(self) -> int:
        with self.lock:
            return len(self.copies)


def start(config: Path, log: Path, port: int) -> subprocess.Popen:
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "listserv", "serve", "--config", str(config)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"listserv exited:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("listserv did not start listening")


def wait(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def post(port: int, msgid: str) -> None:
    sender = common.address(0)
    raw = (
        f"From: {sender}\r\nTo: {common.LIST}@{common.DOMAIN}\r\nSubject: {msgid}\r\n"
        f"Message-ID: <{msgid}@example.net>\r\n\r\n" + "A line of text.\r\n" * 60
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(sender, [f"{common.LIST}@{common.DOMAIN}"], raw)


def trial(
    n: int, conns: int, kill_at: float, number: int, pipelining: bool
) -> tuple[int, int, float, float]:
    folder = Path(tempfile.mkdtemp(prefix="listserv-kill9-"))
    sink = Sink(pipelining)
    controller = Controller(sink, hostname="127.0.0.1", port=common.free_port())
    controller.start()
    try:
        url = f"sqlite:///{folder / 'listserv.db'}"
        smtp_port = common.free_port()
        text = common.config_text(url, controller.port, conns)
        text = text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{smtp_port}"', 1)
        config = folder / "listserv.toml"
        config.write_text(text)
        log = folder / "serve.log"
        proc = start(config, log, smtp_port)  # creates the schema
        common.insert_members(url, n)
        post(smtp_port, f"kill9-{number}")
        if not wait(lambda: sink.distinct() >= kill_at * n, 120):
            raise SystemExit("the fan-out did not get under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        restarted = time.monotonic()
        proc = start(config, log, smtp_port)
        drained = wait(lambda: sink.distinct() >= n, 300)
        drain = time.monotonic() - restarted if drained else float("inf")
        time.sleep(0.5)  # any late duplicate arrives
        with sink.lock:
            lost = n - len(sink.copies)
            twice = sum(1 for c in sink.copies.values() if c > 1)
            sink.copies.clear()
        post(smtp_port, f"term-{number}")  # and SIGTERM at a tenth of a second fan-out
        wait(lambda: sink.distinct() >= 0.1 * n, 120)
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        return lost, twice, drain, time.monotonic() - t
    finally:
        controller.stop()
        common.clean_up(folder, None, keep=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction delivered at the kill")
    ap.add_argument("--pipelining", action="store_true", help="the sink offers PIPELINING")
    args = ap.parse_args()
    worst = 0
    for number in range(1, args.trials + 1):
        lost, twice, drain, term = trial(
            args.members, args.connections, args.kill_at, number, args.pipelining
        )
        worst = max(worst, twice)
        print(
            f"kill9: trial {number}: {args.members} members, killed at {args.kill_at:.0%}"
            f"{' (pipelining sink)' if args.pipelining else ''}: "
            f"lost {lost}, duplicated {twice} (at most {args.connections} in flight), "
            f"drained {drain:.1f} s after the restart; "
            f"SIGTERM at 10% of a second fan-out: exit after {term:.2f} s"
        )
    return 0 if worst <= args.connections else 1


if __name__ == "__main__":
    sys.exit(main())
