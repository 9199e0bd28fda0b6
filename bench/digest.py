"""Digest benchmark: build and queue a weekly digest of 200 posts for 50,000 digest members,
or (--kind alumni) the alumni update for 50,000 alumni in 12 fields.

    python bench/digest.py [--kind regular|alumni] [--members N] [--posts P]
                           [--format mime|plain] [--db sqlite|postgresql] [--keep]

Members and posts are inserted in a child process (not timed, not counted in our RSS); then
listserv.digest.runs.run_digest(store, cfg, "networking", KIND, now) is timed: it reads the
week's posts, builds the digest once (the alumni update once per field, issue 13) and queues one
delivery row per digest (or alumni) member. For alumni, posts carry topics and field tags and
the six trend periods hold join, job-leave and comeback events, so the pulse has work to do.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

WORDS = (
    "resume interview recruiter hiring networking warehouse logistics analyst manager "
    "referral portfolio salary benefits remote onsite contract workshop library career fair "
    "linkedin cover letter application deadline opening team role experience skills"
).split()
SUBJECTS = (
    "Resume workshop next Thursday",
    "Anyone hiring in logistics?",
    "Interview tips that helped me",
    "Job fair at the community college",
    "Recruiter asked for salary history",
    "Remote roles worth a look",
    "Volunteer gigs that turned into jobs",
    "Networking lunch Friday",
)


def make_posts(url: str, n_posts: int, now: datetime, fields: tuple[str, ...] = ()) -> int:
    """n_posts accepted posts of ~2 KB spread over the last week, some of them replies; list first seen a week ago."""
    from listserv.store import open_store
    from listserv.store.members import ensure_list
    from listserv.store.tables import Post

    rnd = random.Random(7)
    store = open_store(url)
    start = now - timedelta(days=7)
    size = 0
    try:
        with store.session() as s:
            ensure_list(s, common.LIST, start)
            threads: list[tuple[str, str]] = []  # (message_id, subject)
            for i in range(n_posts):
                at = start + timedelta(seconds=(i + 0.5) * 7 * 86400 / n_posts)
                mid = f"<post{i:05d}.{rnd.randrange(10**9)}@example.net>"
                sender = common.address(rnd.randrange(1000))
                reply_to = (
                    threads[rnd.randrange(len(threads))] if threads and rnd.random() < 0.6 else None
                )
                subject = f"Re: {reply_to[1]}" if reply_to else rnd.choice(SUBJECTS)
                para = lambda: " ".join(rnd.choice(WORDS) for _ in range(60))  # noqa: E731
                body = (
                    "\r\n\r\n".join("\r\n".join(_wrap(para())) for _ in range(4))
                    + "\r\n\r\n-- \r\nSent from my phone\r\n"
                )
                head = (
                    f"From: Member {i} <{sender}>\r\nTo: {common.LIST}@{common.DOMAIN}\r\n"
                    f"Subject: [networking] {subject}\r\nDate: {format_datetime(at)}\r\n"
                    f"Message-ID: {mid}\r\n"
                    + (
                        f"In-Reply-To: {reply_to[0]}\r\nReferences: {reply_to[0]}\r\n"
                        if reply_to
                        else ""
                    )
                    + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 7bit\r\n"
                )
                raw = (head + "\r\n" + body).encode()
                size += len(raw)
                s.add(
                    Post(
                        list_name=common.LIST,
                        message_id=mid,
                        sender=sender,
                        from_header=f"Member {i} <{sender}>",
                        subject=f"[networking] {subject}",
                        received_at=at,
                        raw=raw,
                        status="accepted",
                        thread_key=reply_to[0] if reply_to else mid,
                        in_reply_to=reply_to[0] if reply_to else "",
                        distributed_at=at,
                        topic="hiring"
                        if "hiring" in subject.lower()
                        else ("layoff" if fields and rnd.random() < 0.2 else None),
                        fields=fields[rnd.randrange(len(fields))] if fields else "",
                    )
                )
                if not reply_to:
                    threads.append((mid, subject))
    finally:
        store.dispose()
    return size


def _wrap(text: str, width: int = 72) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


def make_events(url: str, members: int, now: datetime) -> None:
    """Joins, job leaves and comebacks of members over the last six weeks (the trend periods)."""
    from sqlalchemy import insert

    from listserv.store import open_store
    from listserv.store.tables import Event

    rnd = random.Random(11)
    kinds = ("join",) * 6 + ("job-leave",) * 3 + ("back",)
    rows = [
        dict(
            list_name=common.LIST,
            address=common.address(rnd.randrange(members)),
            kind=rnd.choice(kinds),
            reason="bench",
            at=now - timedelta(seconds=rnd.randrange(42 * 86400)),
        )
        for _ in range(max(members // 10, 1))
    ]
    store = open_store(url)
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(Event.__table__), rows)
    finally:
        store.dispose()


def setup(url: str, members: int, posts: int, now: datetime, kind: str) -> tuple[float, int]:
    from listserv.fields import DEFAULT_FIELDS

    t = time.perf_counter()
    if kind == "alumni":
        fields = tuple(DEFAULT_FIELDS)
        common.insert_members(url, members, delivery="alumni", fields=fields)
        size = make_posts(url, posts, now, fields)
        make_events(url, members, now)
    else:
        common.insert_members(url, members, delivery="digest")
        size = make_posts(url, posts, now)
    return time.perf_counter() - t, size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", choices=("regular", "alumni"), default="regular")
    ap.add_argument("--members", type=int, default=50_000)
    ap.add_argument("--posts", type=int, default=200)
    ap.add_argument("--format", choices=("mime", "plain"), default="mime")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from listserv.config import parse_config
    from listserv.digest.runs import run_digest
    from listserv.store import open_store
    from listserv.store import outbound as queue
    from listserv.store.tables import DigestRun, Outbound

    folder = Path(tempfile.mkdtemp(prefix="listserv-digest-"))
    db = None
    ok = True
    try:
        db = common.Database(args.db, folder)
        path = folder / "listserv.toml"
        path.write_text(
            common.config_text(db.url)
            + f'\n[lists.{common.LIST}.digest]\nformat = "{args.format}"\n'
        )
        cfg = parse_config(path.read_text(), path)
        now = datetime.now(UTC)
        took, size = common.in_child(
            setup, cfg.database_url, args.members, args.posts, now, args.kind
        )
        who = "alumni in 12 fields" if args.kind == "alumni" else "digest members"
        print(
            f"setup: {args.members} {who} and {args.posts} posts ({size / args.posts / 1024:.1f} KB "
            f"each on average) inserted in {took:.1f} s ({args.db}, folder {folder})",
            flush=True,
        )

        rss_before = common.peak_rss_mb()
        store = open_store(cfg.database_url)
        t = time.perf_counter()
        result = run_digest(store, cfg, common.LIST, args.kind, now)
        dt = time.perf_counter() - t
        rss = common.peak_rss_mb()

        with store.session() as s:
            states = queue.counts_by_state(s)
            run = s.exec(__import__("sqlmodel").select(DigestRun)).one()
            out = s.get(Outbound, run.outbound_id)
            digest_kb = len(out.raw) / 1024 if out else 0
            renders = len(
                s.exec(
                    __import__("sqlmodel").select(Outbound.id).where(Outbound.kind == "digest")
                ).all()
            )
        store.dispose()
        problems = []
        expected = args.members + (1 if args.kind == "alumni" else 0)  # + the owner's stats mail
        if states != {"queued": expected}:
            problems.append(f"delivery rows by state {states}, expected {{'queued': {expected}}}")
        if run.posts != args.posts:
            problems.append(f"the digest holds {run.posts} posts, expected {args.posts}")
        ok = not problems
        print(
            f"check: {result}; {renders} message(s) rendered; digest {digest_kb:.0f} KB; "
            f"delivery rows {states}: " + ("OK" if ok else "FAILED: " + "; ".join(problems))
        )
        print(
            f"{args.kind} digest: {args.posts} posts ({args.format}) for {args.members} {who} built and "
            f"queued in {dt:.2f} s, peak RSS {rss:.0f} MB (before the run {rss_before:.0f} MB)",
            flush=True,
        )
    finally:
        common.clean_up(folder, db, args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
