"""Which process holds a claim: an instance id per process, and whether it is gone."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable


def make_instance_id() -> str:
    """This process among several on one database: 'RANDOM@HOST:PID' (claims record it)."""
    return f"{secrets.token_hex(3)}@{socket.gethostname()}:{os.getpid()}"


def parse_instance(instance: str) -> tuple[str, int] | None:
    """(host, pid) of an instance id 'RANDOM@HOST:PID', None if not one.

    >>> parse_instance("3fa9c1@mx1.example.org:4242"), parse_instance("")
    (('mx1.example.org', 4242), None)
    """
    rest, _, pid = instance.rpartition(":")
    _, at, host = rest.partition("@")
    return (host, int(pid)) if at and host and pid.isdigit() else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def dead_here(instances: list[str], me: str, alive: Callable[[int], bool] = pid_alive) -> list[str]:
    """The instances among these that ran on this host and whose process is gone: their claims
    can be taken back at once. Another host's claims wait out their lease (we cannot tell).

    >>> dead_here(["a@h:1", "b@h:2", "c@other:1", "me@h:3", ""], "me@h:3", lambda pid: pid == 2)
    ['a@h:1']
    """
    mine = parse_instance(me)
    found = []
    for instance in instances:
        parsed = parse_instance(instance)
        if mine and parsed and instance != me and parsed[0] == mine[0] and not alive(parsed[1]):
            found.append(instance)
    return found


def is_dead_here(instance: str) -> bool:
    """True for an instance id of this host whose process is gone (a kill -9, a crash); never
    this very process (tests run several servers in one)."""
    parsed = parse_instance(instance)
    if parsed is None or parsed[0] != socket.gethostname() or parsed[1] == os.getpid():
        return False
    return not pid_alive(parsed[1])
