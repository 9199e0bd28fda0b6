"""A throwaway Postfix instance for end-to-end tests of deploy/postfix.cf.

``PostfixInstance`` writes a private config_directory, queue_directory and data_directory
under a temporary folder, listens only on 127.0.0.1 on a free port, and is started and
stopped with ``postfix -c DIR``. It never reads or touches the system instance's
/etc/postfix/main.cf or its queue: the only things it shares are the installed binaries.

Typical use::

    with PostfixInstance(domain="lists.example.org", lmtp_port=8024, relayhost_port=2525,
                         extra=Path("deploy/postfix.cf").read_text()) as mta:
        smtplib.SMTP("127.0.0.1", mta.port)

Postfix's master has to start as root (it drops to the ``postfix`` user), so the tests skip
with a reason when not root, or when Postfix is not installed.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PostfixInstance", "skip_reason"]

SYSTEM_MASTER_CF = Path("/etc/postfix/master.cf")
_START_TIMEOUT_S = 20


def postfix_binary() -> str | None:
    return shutil.which("postfix") or (
        "/usr/sbin/postfix" if os.access("/usr/sbin/postfix", os.X_OK) else None
    )


def skip_reason() -> str | None:
    """Why a throwaway Postfix cannot run here, or None if it can."""
    if postfix_binary() is None or not SYSTEM_MASTER_CF.is_file():
        return "Postfix is not installed; apt-get install postfix to run this test"
    if os.geteuid() != 0:
        return "Postfix's master must start as root; run the suite as root to run this test"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the 'postfix' user is missing; reinstall the postfix package"
    return None


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def master_cf(smtpd_port: int) -> str:
    """The installed master.cf, with smtpd on 127.0.0.1:PORT and no chroot (private dirs)."""
    out = []
    for line in SYSTEM_MASTER_CF.read_text().splitlines():
        fields = line.split()
        if line[:1] in ("#", " ", "\t") or len(fields) < 8:
            out.append(line)
            continue
        if fields[0] == "smtp" and fields[1] == "inet":
            fields[0] = f"127.0.0.1:{smtpd_port}"
        fields[4] = "n"  # chroot would need a copy of /etc inside the private queue
        out.append("  ".join(fields[:8]) + (" " + " ".join(fields[8:]) if fields[8:] else ""))
    return "\n".join(out) + "\n"


def settings(text: str) -> dict[str, str]:
    """The 'name = value' lines of a main.cf fragment (comments and continuations joined)."""
    found: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[:1] in (" ", "\t") and name:
            found[name] += " " + line.strip()
            continue
        m = re.match(r"^([a-z_0-9]+)\s*=\s*(.*)$", line)
        if m:
            name = m.group(1)
            found[name] = m.group(2).strip()
    return found


class PostfixInstance:
    """A second Postfix on loopback: relay_domains for the list domain over LMTP, everything
    else out through relayhost (a sink), the given main.cf fragment on top."""

    def __init__(
        self, *, domain: str, lmtp_port: int, relayhost_port: int, extra: str = ""
    ) -> None:
        self.domain = domain
        self.lmtp_port = lmtp_port
        self.relayhost_port = relayhost_port
        self.extra = extra
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="listserv-postfix-"))
        self.config_dir = self.tmp / "etc"
        self.queue_dir = self.tmp / "spool"
        self.data_dir = self.tmp / "lib"
        self.log_file = self.tmp / "postfix.log"

    def main_cf(self) -> dict[str, str]:
        ours = settings(self.extra)
        # The deploy snippet names a transport map file; here the same route is inline.
        ours["transport_maps"] = f"inline:{{ {self.domain}=lmtp:inet:127.0.0.1:{self.lmtp_port} }}"
        ours = {k: v.replace("lists.example.org", self.domain) for k, v in ours.items()}
        base = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "meta_directory": "/etc/postfix",
            "syslog_name": f"postfix-listserv-test-{self.port}",
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.tmp),  # default: /var and /dev/stdout only
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mta.test.invalid",
            "mydomain": "test.invalid",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{self.relayhost_port}",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            # A test should see results in seconds, not the production minutes.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "address_verify_poll_delay": "1s",
            "address_verify_poll_count": "10",
        }
        return {**base, **ours}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        binary = postfix_binary()
        assert binary is not None
        return subprocess.run(
            [binary, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> PostfixInstance:
        self.tmp.chmod(0o755)  # the daemons run as 'postfix' and must reach their folders
        self.config_dir.mkdir(parents=True)
        for folder in (self.queue_dir, self.data_dir):
            folder.mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self.data_dir, postfix_user.pw_uid, postfix_user.pw_gid)
        lines = [f"{k} = {v}" for k, v in self.main_cf().items()]
        (self.config_dir / "main.cf").write_text("\n".join(lines) + "\n")
        (self.config_dir / "master.cf").write_text(master_cf(self.port))
        # 'check' creates the queue folders with Postfix's own owners and modes
        for step in (("check",), ("start",)):
            proc = self.run(*step)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"postfix {step[0]} failed: {proc.stderr or proc.stdout}{self.log()[-3000:]}"
                )
        self.wait_listening()
        return self

    def wait_listening(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix did not listen on 127.0.0.1:{self.port}; see {self.log()}")

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else "(no log)"

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop this instance's master (never the system one) and delete every file."""
        pid = self.master_pid()
        if pid is not None:
            self.run("stop")
            deadline = time.monotonic() + _START_TIMEOUT_S
            while pid_running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> PostfixInstance:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
