"""The store: the only code that touches SQL. `Store` owns the engine; submodules hold the queries."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from listserv.errors import StorageError
from listserv.store import schema, tables  # noqa: F401  (tables: registers the tables)

T = TypeVar("T")
ROUND_SECONDS = 0.02  # a writer round takes more non-urgent jobs only this long before its commit


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control from pysqlite so every transaction is BEGIN IMMEDIATE:
    # a deferred reader that later writes can otherwise fail with "database is locked".
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # A reader's deferred BEGIN takes no lock at all in WAL mode (Store.reader).
    conn.exec_driver_sql(
        "BEGIN" if conn.get_execution_options().get("reader") else "BEGIN IMMEDIATE"
    )


def _no_wait_connection(path: str) -> sqlite3.Connection:
    """The bare sqlite3 connection of Store.write_now. The database is already in WAL mode
    (make_engine's connections set it); this one never waits for the lock (timeout 0), never
    waits for the disk (synchronous=NORMAL) and leaves checkpoints to the others."""
    db = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    for pragma in ("busy_timeout=0", "synchronous=NORMAL", "wal_autocheckpoint=0"):
        db.execute(f"PRAGMA {pragma}")
    return db


def make_engine(url: str) -> Engine:
    """An engine for url; SQLite gets WAL mode and immediate transactions."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class Store:
    """Holds the engine; `with store.session() as s:` is one committed transaction.

    SQLite has one write lock per database. Threads of this process that want it queue on
    `write_lock` instead of inside SQLite, whose busy handler sleeps (1, 2, 5 ... 100 ms) and so
    made receiving, dispatching and delivering wait on each other (issue 12). Another process
    (the CLI) still meets SQLite's busy timeout. PostgreSQL locks rows, so it needs no such lock.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._lock = threading.RLock()
        self.write_lock: contextlib.AbstractContextManager[object] = (
            self._lock if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        self._urgent = 0  # writers that go first: a client is waiting for their 250
        self._turn = threading.Condition()
        self._jobs: tuple[deque[_Job], deque[_Job]] = (deque(), deque())  # (urgent, others)
        self._jobs_ready = threading.Condition()
        self._writer: threading.Thread | None = None
        self._closing = False
        self._now: sqlite3.Connection | None = None  # write_now()'s own (event loop only)
        self._async: Any = None  # write_async()'s psycopg AsyncConnection (event loop only)

    def prepare(self, upgrade: bool = False) -> None:
        """A fresh database gets every table; an older one is refused unless upgrade is set."""
        try:
            schema.prepare(self.engine, self.url, upgrade)
        except OperationalError as exc:
            raise StorageError(f"cannot open the database {self.url}: {exc.orig}") from None

    @contextlib.contextmanager
    def session(self, urgent: bool = False) -> Iterator[Session]:
        """One write transaction; keep it short: parse and decide before opening it.

        An urgent one (saving accepted mail) goes before the others waiting for the lock.
        """
        if self.dialect == "sqlite":
            with self._turn:
                if urgent:
                    self._urgent += 1
                else:
                    self._turn.wait_for(lambda: self._urgent == 0, timeout=0.1)
        try:
            with self.write_lock, Session(self.engine, expire_on_commit=False) as s:
                with s.begin():
                    yield s
        finally:
            if urgent and self.dialect == "sqlite":
                with self._turn:
                    self._urgent -= 1
                    self._turn.notify_all()

    def submit(self, fn: Callable[[Session], T], urgent: bool = False) -> Future[T]:
        """Run fn(session) on the store's one writer thread; the future resolves after the commit.

        The writer runs every job waiting when it is free in one transaction (each under its own
        savepoint, so a failing job fails alone) and commits once: saves of accepted mail,
        dispatch, claims and delivery outcomes share one fsync instead of queueing on the lock
        for one each (issue 12). Urgent jobs (a client waits for their 250) go first, and any
        that arrive while a round runs join it before its commit."""
        if threading.current_thread() is self._writer:  # it would wait on itself for ever
            raise RuntimeError("a writer job cannot submit another; use its session")
        future: Future[T] = Future()
        with self._jobs_ready:
            self._jobs[0 if urgent else 1].append(_Job(fn, future))
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="store-writer")
                self._writer.daemon = True
                self._writer.start()
            self._jobs_ready.notify()
        return future

    async def write(self, fn: Callable[[Session], T], urgent: bool = False) -> T:
        """submit() for the event loop: returns fn's result once it is committed."""
        return await asyncio.wrap_future(self.submit(fn, urgent))

    def _next_job(self, others: bool) -> _Job | None:
        with self._jobs_ready:
            urgent, normal = self._jobs
            if urgent:
                return urgent.popleft()
            if others and normal:
                return normal.popleft()
            return None

    def _write_loop(self) -> None:
        while True:
            with self._jobs_ready:
                self._jobs_ready.wait_for(lambda: any(self._jobs) or self._closing)
                if self._closing and not any(self._jobs):
                    return
            self._round()

    def _round(self) -> None:
        done: list[tuple[_Job, Any, BaseException | None]] = []
        first: _Job | None = None
        try:
            with self.write_lock, Session(self.engine, expire_on_commit=False) as s:
                with s.begin():
                    started = time.monotonic()
                    while job := self._next_job(time.monotonic() - started < ROUND_SECONDS):
                        if not job.future.set_running_or_notify_cancel():
                            continue
                        if first is None:  # most rounds hold one job: no savepoint for it
                            first = job
                            done.append((job, job.fn(s), None))  # failing, it ends the round
                            continue
                        try:
                            with s.begin_nested():
                                done.append((job, job.fn(s), None))
                        except Exception as exc:  # noqa: BLE001 - that job fails, not the round
                            done.append((job, None, exc))
        except Exception as exc:  # noqa: BLE001 - the first job or the commit failed: nothing
            # of the round is kept; a first job that failed is the only one in it
            if first is not None and not done:
                first.future.set_exception(exc)
            for job, _, _ in done:
                job.future.set_exception(exc)
            return
        for job, result, error in done:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    @contextlib.contextmanager
    def core(self, flushed: bool = True) -> Iterator[Connection]:
        """One write transaction on a plain Connection (no ORM Session: about a third of the
        CPU per commit), queued on the same lock as session().

        flushed=False (SQLite): the commit does not wait for the disk (synchronous=NORMAL in
        WAL mode). It survives this process dying at once, and a power loss from the next
        flushed commit (intake's saves) or checkpoint on. Only delivery's "sent" marks use it:
        the fsync per group commit was a tenth of fan-out's rate (issue 12), and what a power
        loss can cost is a resent copy, never a lost one."""
        if flushed or self.dialect != "sqlite":
            with self.write_lock, self.engine.begin() as conn:
                yield conn
            return
        with self.write_lock, self.engine.connect() as conn:
            sqlite = conn.connection.driver_connection  # outside any transaction: no autobegin
            assert sqlite is not None
            sqlite.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    yield conn
            finally:
                try:
                    sqlite.execute("PRAGMA synchronous=FULL")
                except Exception:  # still in a transaction: the connection must not be reused
                    conn.invalidate()
                    raise

    def write_now(self, fn: Callable[[sqlite3.Connection], None]) -> bool:
        """Run fn(db) in one unflushed write transaction (as core(flushed=False)) on the calling
        thread, at once, or not at all (False) when someone holds the write lock: for the event
        loop, which must never wait. SQLite only. db is a bare sqlite3 connection of its own,
        inside BEGIN IMMEDIATE: it never waits on the lock (timeout 0) and leaves checkpoints
        to other commits, so nothing it does touches the disk. A thread per group commit of
        sent marks cost more than the commit did (the context switches were a fifth of
        fan-out's CPU), and SQLAlchemy's execution around the statement over half of what
        was left (issue 12)."""
        path = self.engine.url.database
        if self.dialect != "sqlite" or path in (None, "", ":memory:"):
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._now is None:
                self._now = _no_wait_connection(path)
            db = self._now
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):  # another process holds the lock
                    return False
                self._drop_now()
                raise
            except sqlite3.Error:  # a connection that cannot begin is not used again
                self._drop_now()
                raise
            try:
                fn(db)
                db.execute("COMMIT")
            except BaseException:
                try:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                except sqlite3.Error:  # stuck in its transaction: never reused
                    self._drop_now()
                raise
            return True
        finally:
            self._lock.release()

    async def write_async(self, fn: Callable[[Any], Awaitable[None]]) -> bool:
        """PostgreSQL: await fn(conn) on an async psycopg connection of its own, in autocommit
        mode (so fn should be one statement: its own transaction), in the event loop, with no
        thread and no SQLAlchemy around it; False (nothing run) on SQLite. The connection is
        dropped when fn fails or is cancelled, and opened again by the next call."""
        if self.dialect != "postgresql":
            return False
        if self._async is None:
            import psycopg

            conninfo = self.engine.url.set(drivername="postgresql")
            self._async = await psycopg.AsyncConnection.connect(
                conninfo.render_as_string(hide_password=False), autocommit=True
            )
        try:
            await fn(self._async)
        except BaseException:
            self._drop_async()
            raise
        return True

    def _drop_async(self) -> None:
        conn, self._async = self._async, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()  # synchronous: dispose() may run outside any event loop

    def _drop_now(self) -> None:
        """Close write_now's connection; the next call opens a new one."""
        db, self._now = self._now, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    @contextlib.contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only snapshot that never waits for a writer (WAL on SQLite)."""
        with self.engine.connect().execution_options(reader=True) as conn:
            with Session(bind=conn, expire_on_commit=False) as s:
                yield s  # leaving the connection rolls the snapshot back; rows stay loaded

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - a health check reports, never raises
            return False

    def dispose(self) -> None:
        with self._jobs_ready:
            self._closing = True
            self._jobs_ready.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join(30)
        with self._jobs_ready:
            self._writer, self._closing = None, False  # a later submit() starts a new one
        self._drop_now()
        self._drop_async()
        self.engine.dispose()


class _Job:
    """One write waiting for the writer thread."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[Session], Any], future: Future[Any]) -> None:
        self.fn = fn
        self.future = future


def open_store(url: str, upgrade: bool = False) -> Store:
    """Open the store at url: created when new; an older schema is refused (SchemaBehind)
    unless upgrade is set."""
    store = Store(url)
    store.prepare(upgrade)
    return store


def rowcount(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE touched (0 when the driver cannot say)."""
    return max(cast(CursorResult[Any], result).rowcount or 0, 0)
