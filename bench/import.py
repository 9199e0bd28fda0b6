"""`listserv members import` of a big export, against a bare executemany of the same rows.

    python bench/import.py [--rows N] [--mailman2] [--db sqlite|postgresql|both] [--keep]

It writes an N-row listserv CSV (address,name,delivery; every tenth member digest) and, with
--mailman2, the same members as a Mailman 2 `list_members -f` file. Each file is imported by
`python -m listserv members import` run as a child process against a fresh database (the
clock covers the whole child: interpreter start, imports, reading, inserting, committing);
the child's peak RSS comes from wait4(). The anchor, in the same run and on the same kind of
database, is one DB-API `executemany` INSERT of the same rows into the same `member` table
with the same columns, tokens included (no events, no reading, no checks).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import common  # type: ignore[import-not-found]

TARGET_S, TARGET_MB = 10.0, 200.0


def write_csv(path: Path, n: int) -> None:
    with path.open("w") as fh:
        fh.write("address,name,delivery\n")
        for i in range(n):
            fh.write(f"{common.address(i)},Member {i},{'digest' if i % 10 == 0 else 'regular'}\n")


def write_mailman2(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(f'"Member {i}, Jr." <{common.address(i)}>\n')


def run_import(config: Path, export: Path, n: int, url: str) -> tuple[float, float, float, str]:
    """(wall s, child CPU s, child peak RSS MB, the child's last stdout line) of one import."""
    cmd = [sys.executable, "-m", "listserv", "members", "import", common.LIST, str(export),
           "--config", str(config)]  # fmt: skip
    out, err = export.with_suffix(".out"), export.with_suffix(".err")
    with out.open("w") as fo, err.open("w") as fe:
        t = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=fo, stderr=fe)
        _pid, status, usage = os.wait4(child.pid, 0)  # its own rusage: peak RSS of the child
        wall = time.perf_counter() - t
    child.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"import failed ({code}): {err.read_text().strip()[-500:]}")
    got = count_members(url)
    if got != n:
        raise SystemExit(f"import left {got} members, expected {n}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, out.read_text().strip().splitlines()[-1]


def startup() -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of `python -m listserv --help`: the fixed cost in every
    import."""
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "listserv", "--help"],
                             stdout=subprocess.DEVNULL)  # fmt: skip
    _pid, _status, usage = os.wait4(child.pid, 0)
    child.returncode = 0
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def count_members(url: str) -> int:
    from sqlalchemy import text

    from listserv.store import open_store

    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM member")).scalar_one())
    finally:
        store.dispose()


def bare_insert(url: str, n: int) -> tuple[float, float]:
    """(wall s, CPU s) of one DB-API executemany of n member rows in one transaction (the
    anchor); the CPU is this process's only, so on PostgreSQL the server's share is not in it."""
    from listserv.store import open_store

    store = open_store(url)
    now = datetime.now(UTC)
    rows = [
        (common.LIST, common.address(i), f"Member {i}", "active",
         "digest" if i % 10 == 0 else "regular", secrets.token_hex(20), now, now, "", 0.0, 0, "")
        for i in range(n)
    ]  # fmt: skip
    mark = "?" if store.dialect == "sqlite" else "%s"
    sql = (
        "INSERT INTO member (list_name, address, name, status, delivery, token, created_at, "
        f"joined_at, left_reason, bounce_score, probes_sent, field) VALUES ({', '.join([mark] * 12)})"
    )
    raw = store.engine.raw_connection()
    try:
        t, cpu = time.perf_counter(), time.process_time()
        cur = raw.cursor()
        if store.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        cur.executemany(sql, rows)
        raw.commit()
        return time.perf_counter() - t, time.process_time() - cpu
    finally:
        raw.close()
        store.dispose()


def bench(kind: str, folder: Path, n: int, exports: list[Path]) -> bool:
    (folder / kind).mkdir(parents=True, exist_ok=True)
    db = common.Database(kind, folder / kind)
    ok = True
    try:
        anchor_url = (
            db.cluster.fresh_database("anchor")
            if db.cluster is not None
            else f"sqlite:///{folder / kind / 'anchor.db'}"
        )
        anchor, anchor_cpu = common.in_child(bare_insert, anchor_url, n)
        print(f"anchor ({kind}): bare executemany of {n:,} rows in {anchor:.2f} s "
              f"= {n / anchor:,.0f} rows/s, CPU {anchor_cpu:.2f} s")  # fmt: skip
        for i, export in enumerate(exports):
            url = db.cluster.fresh_database(f"run{i}") if db.cluster is not None else (
                f"sqlite:///{folder / kind / f'run{i}.db'}")  # fmt: skip
            config = folder / kind / f"run{i}.toml"
            config.write_text(common.config_text(url))
            wall, cpu, rss, summary = run_import(config, export, n, url)
            met = wall < TARGET_S and rss < TARGET_MB
            ok = ok and met
            print(
                f"import ({kind}, {export.name}): {n:,} rows in {wall:.2f} s = {n / wall:,.0f} "
                f"rows/s, child CPU {cpu:.2f} s, peak RSS {rss:.0f} MB; {wall / anchor:.1f}x the "
                f"anchor's time "
                f"(anchor/import rate {anchor / wall:.2f}); target < {TARGET_S:.0f} s and "
                f"< {TARGET_MB:.0f} MB: {'met' if met else 'MISSED'}\n  child said: {summary}"
            )
    finally:
        db.close()
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--mailman2", action="store_true", help="also import a Mailman 2 file")
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="listserv-import-"))
    try:
        exports = [folder / "members.csv"]
        write_csv(exports[0], args.rows)
        if args.mailman2:
            exports.append(folder / "list_members.txt")
            write_mailman2(exports[1], args.rows)
        kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
        wall, cpu, rss = startup()
        print(f"start-up: `python -m listserv --help` takes {wall:.2f} s, CPU {cpu:.2f} s, "
              f"peak RSS {rss:.0f} MB (included in each import below)")  # fmt: skip
        ok = True
        for kind in kinds:
            if kind == "postgresql":
                from tests.pgcluster import skip_reason

                if reason := skip_reason():
                    print(f"postgresql: skipped ({reason})")
                    continue
            ok = bench(kind, folder, args.rows, exports) and ok
        return 0 if ok else 1
    finally:
        common.clean_up(folder, None, args.keep)


if __name__ == "__main__":
    sys.exit(main())
