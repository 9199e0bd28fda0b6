"""Throwaway PostgreSQL clusters for the test suite.

``PgCluster`` runs ``initdb`` into a private temporary directory, starts a
server that listens only on 127.0.0.1 (plus a Unix socket inside that
directory) on a free port, creates the ``listserv_test`` database, and on exit
stops the server and deletes everything.  Durability is switched off
(``fsync``, ``synchronous_commit``, ``full_page_writes``) so start-up takes a
second or two.

When the tests run as root, the server binaries are run as the ``postgres``
OS user through ``runuser``; otherwise they run directly as the current user.

Typical use::

    from tests.pgcluster import pg_cluster  # session-scoped pytest fixture

    def test_something(pg_cluster):
        engine = create_engine(pg_cluster.fresh_database("test_something"))

or without pytest::

    with PgCluster() as pg:
        engine = create_engine(pg.url)
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PgCluster", "PgClusterError", "find_pg_bindir", "pg_cluster", "skip_reason"]

DEFAULT_DBNAME = "listserv_test"
SUPERUSER = "postgres"
HOST = "127.0.0.1"

_REQUIRED_BINARIES = ("initdb", "pg_ctl")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_START_TIMEOUT_S = 30
_PORT_ATTEMPTS = 3


class PgClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


# --------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED_BINARIES)


def _version_key(path: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin -> sort numerically by <version>
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_pg_bindir() -> Path | None:
    """Return the directory holding the PostgreSQL server binaries, or None.

    Prefers ``pg_config --bindir`` when that directory has ``initdb`` and
    ``pg_ctl`` (on Debian, ``pg_config`` may come from libpq-dev without any
    server installed); otherwise the newest ``/usr/lib/postgresql/*/bin``.
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_binaries(Path(out)):
            return Path(out)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_binaries(Path(candidate)):
            return Path(candidate)
    return None


def _running_as_root() -> bool:
    return os.geteuid() == 0


def skip_reason() -> str | None:
    """Why a throwaway cluster cannot be started here, or None if it can."""
    if find_pg_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; "
            "apt-get install postgresql-15 to run these tests"
        )
    if _running_as_root():
        if shutil.which("runuser") is None:
            return (
                "running as root but runuser (util-linux) is not installed, so the "
                "PostgreSQL server cannot be started as the postgres user"
            )
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return (
                "running as root but there is no 'postgres' OS user to run the "
                "PostgreSQL server as; apt-get install postgresql-15 to create it"
            )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not importable; pip install 'psycopg[binary]' to run these tests"
    return None


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _world_traversable(path: Path) -> bool:
    """True if every directory from / down to ``path`` is o+x (postgres can reach it)."""
    path = path.resolve()
    for part in [path, *path.parents]:
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(server log {path} unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _clean_env() -> dict[str, str]:
    # PGDATA, PGPORT, PGHOST, ... from the caller's environment must not leak
    # into initdb/pg_ctl; also force a predictable locale for the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    return env


def pid_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie awaiting reaping by init."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        # /proc/PID/stat: "pid (comm) S ..." -- the state follows the last ')'.
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _child_subreaper(enable: bool | None = None) -> bool:
    """Query (``enable=None``) or set this process's Linux child-subreaper flag.

    ``pg_ctl start`` daemonises the postmaster, which is normally re-parented
    to PID 1; after shutdown it then lingers as a ``<defunct>`` zombie until
    init gets round to reaping it.  While we are a subreaper during
    ``pg_ctl start`` the postmaster becomes our child instead, so ``stop()``
    can reap it at once.  Returns False where unsupported (non-Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if enable is None:
            flag = ctypes.c_int(0)
            if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) != 0:
                return False
            return bool(flag.value)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enable), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is an exited child of ours (never blocks)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: init reaps it


def _postmaster_pid(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop_server(bindir: Path, datadir: Path, cwd: Path, as_postgres: bool) -> None:
    """Immediate-shutdown the server running in ``datadir``, if any, and reap it."""
    pid = _postmaster_pid(datadir)
    if pid is None:
        return
    cmd = [str(bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "immediate", "-w", "-t", "20"]
    if as_postgres:
        cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
    try:
        subprocess.run(cmd, cwd=cwd, env=_clean_env(), capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        pass
    # pg_ctl -w returns once postmaster.pid is gone, which can be a moment
    # before the postmaster process itself has exited; wait for it, and if
    # pg_ctl could not stop it at all, signal it ourselves (SIGQUIT is an
    # immediate shutdown, SIGKILL the last resort).
    if not _wait_gone(pid, 10):
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                break
            if _wait_gone(pid, 10):
                break
    if not pid_running(pid):
        _reap(pid)


def _cleanup(bindir: Path, datadir: Path, tmpdir: Path, as_postgres: bool) -> None:
    """Stop the server (if any) and delete ``tmpdir``. Idempotent."""
    _stop_server(bindir, datadir, tmpdir, as_postgres)
    shutil.rmtree(tmpdir, ignore_errors=True)


# --------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------


class PgCluster:
    """A throwaway PostgreSQL cluster; use as a context manager.

    Attributes available inside the ``with`` block:

    * ``url`` -- SQLAlchemy URL of the ``listserv_test`` database
      (``postgresql+psycopg://postgres@127.0.0.1:PORT/listserv_test``)
    * ``port``, ``host``, ``dbname``, ``tmpdir``, ``datadir``, ``logfile``
    * ``startup_seconds`` -- wall time initdb + start + createdb took
    """

    def __init__(self, dbname: str = DEFAULT_DBNAME, bindir: Path | None = None) -> None:
        _check_identifier(dbname)
        self.dbname = dbname
        self.host = HOST
        self._bindir = bindir
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.datadir: Path | None = None
        self.logfile: Path | None = None
        self.startup_seconds: float | None = None
        self._as_postgres = _running_as_root()
        self._finalizer: weakref.finalize | None = None

    # -- public API ---------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL of database ``dbname`` in this cluster."""
        if self.port is None:
            raise PgClusterError("the cluster is not running (use it as a context manager)")
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def fresh_database(self, name: str) -> str:
        """Create database ``name`` in this cluster and return its SQLAlchemy URL.

        ``name`` must be a plain identifier (letters, digits, underscore).
        Raises PgClusterError if it already exists.
        """
        _check_identifier(name)
        self._create_database(name)
        return self.url_for(name)

    def start(self) -> PgCluster:
        if self.port is not None:
            raise PgClusterError("cluster already started")
        t0 = time.monotonic()
        bindir = self._bindir or find_pg_bindir()
        if bindir is None:
            raise PgClusterError(skip_reason() or "PostgreSQL server binaries not found")
        self._bindir = bindir
        self.tmpdir = Path(tempfile.mkdtemp(prefix="listserv-pg-", dir=self._tmp_base()))
        self.datadir = self.tmpdir / "data"
        self.logfile = self.tmpdir / "server.log"
        self._finalizer = weakref.finalize(
            self, _cleanup, bindir, self.datadir, self.tmpdir, self._as_postgres
        )
        try:
            os.chmod(self.tmpdir, 0o700)
            if self._as_postgres:
                pw = pwd.getpwnam(SUPERUSER)
                os.chown(self.tmpdir, pw.pw_uid, pw.pw_gid)
            self._initdb()
            self._start_server()
            self._create_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop the server and delete the temporary directory (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()  # runs _cleanup at most once
        self.port = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------

    def _tmp_base(self) -> str | None:
        base = Path(tempfile.gettempdir())
        # The Unix socket path (<tmpdir>/.s.PGSQL.PORT) must stay under ~107
        # bytes, and when running as root the postgres user must be able to
        # reach the directory; fall back to /tmp otherwise.
        too_long = len(str(base)) > 60
        unreachable = self._as_postgres and not _world_traversable(base)
        if (too_long or unreachable) and os.path.isdir("/tmp"):
            return "/tmp"
        return str(base)

    def _run(self, args: list[str], what: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self._bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.tmpdir,  # postgres may not be allowed into the caller's cwd
                env=_clean_env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PgClusterError(
                f"{what} timed out after {timeout}s\n--- server log tail ---\n{self._log_tail()}"
            ) from exc
        return proc

    def _log_tail(self) -> str:
        return _tail(self.logfile) if self.logfile else "(no server log)"

    def _initdb(self) -> None:
        proc = self._run(
            [
                "initdb",
                "-D",
                str(self.datadir),
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )
        if proc.returncode != 0:
            raise PgClusterError(
                f"initdb failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}".rstrip()
            )

    def _start_server(self) -> None:
        last_error = ""
        for _attempt in range(_PORT_ATTEMPTS):
            port = _free_loopback_port()
            options = " ".join(
                [
                    f"-c listen_addresses={HOST}",
                    f"-p {port}",
                    f"-k {self.tmpdir}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            was_subreaper = _child_subreaper()
            if not was_subreaper:
                _child_subreaper(True)
            try:
                proc = self._run(
                    [
                        "pg_ctl",
                        "start",
                        "-D",
                        str(self.datadir),
                        "-l",
                        str(self.logfile),
                        "-w",
                        "-t",
                        str(_START_TIMEOUT_S),
                        "-o",
                        options,
                    ],
                    "pg_ctl start",
                    timeout=_START_TIMEOUT_S + 15,
                )
            finally:
                if not was_subreaper:
                    _child_subreaper(False)
            if proc.returncode == 0:
                self.port = port
                return
            tail = self._log_tail()
            last_error = (
                f"pg_ctl start failed (exit {proc.returncode}) on port {port}:\n"
                f"{proc.stdout}{proc.stderr}\n--- server log tail ({self.logfile}) ---\n{tail}"
            )
            # Make sure a half-started postmaster is gone before retrying.
            _stop_server(self._bindir, self.datadir, self.tmpdir, self._as_postgres)
            # A postmaster that died during start-up was our child (see
            # _child_subreaper); reap it rather than leave a zombie behind.
            for pid in {int(p) for p in re.findall(r"\[(\d+)\]", tail)}:
                if not pid_running(pid):
                    _reap(pid)
            # Only a lost race for the port is worth another attempt.
            if "could not bind" not in tail and "Address already in use" not in tail:
                break
        raise PgClusterError(last_error)

    def _create_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        if self.port is None:
            raise PgClusterError("the cluster is not running (use it as a context manager)")
        try:
            with psycopg.connect(
                host=self.host,
                port=self.port,
                user=SUPERUSER,
                dbname="postgres",
                autocommit=True,
                connect_timeout=10,
            ) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise PgClusterError(
                f"could not create database {name!r}: {exc}\n"
                f"--- server log tail ---\n{self._log_tail()}"
            ) from exc


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER_RE.match(name):
        raise ValueError(
            f"database name {name!r} must be a plain identifier "
            "(letter or underscore, then letters, digits, underscores; at most 63)"
        )


# --------------------------------------------------------------------------
# pytest fixture
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the whole test session.

    Skips the requesting test when PostgreSQL (or runuser/psycopg) is missing.
    Tests wanting isolation should call ``pg_cluster.fresh_database(name)``.
    """
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with PgCluster() as cluster:
        yield cluster
