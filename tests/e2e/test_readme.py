"""The README's 'Try it' step works as written (issue 11: a newcomer must reach a delivered post)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from tests.conftest import add_members, mails_to

README = Path(__file__).resolve().parents[2] / "README.md"


def try_it_lines() -> list[str]:
    section = README.read_text().split("### Try it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the Try it section has a sh block"
    return block.group(1).splitlines()


async def test_readme_first_post_command_delivers_a_post(server, sink):
    """The README's one-line python command posts to the example list and members get it."""
    lines = try_it_lines()
    assert any("listserv members add networking you@example.com" in line for line in lines)
    assert "ls var/outbox/" in lines
    post = next(line for line in lines if line.startswith("python3 -c"))
    add_members(server, "you@example.com")
    command = post.replace("8025", str(server.smtp_port))
    proc = await asyncio.to_thread(
        subprocess.run, ["bash", "-c", command], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    copy = (await mails_to(sink, "you@example.com"))[0]
    assert copy["Subject"] == "[networking] Hello"
    assert "My first post." in copy.get_content()
