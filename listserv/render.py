"""Jinja2 rendering of everything a member or admin reads; templates live in templates/."""

from __future__ import annotations

import functools
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


def template_dir() -> Path:
    """The templates folder: beside the package in a checkout, inside it in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "_templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("listserv templates folder is missing; reinstall listserv")


@functools.cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(template_dir())),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_text(name: str, **ctx: object) -> str:
    """Render one template to text."""
    return environment().get_template(name).render(**ctx)


def split_subject(text: str) -> tuple[str, str]:
    """A rendered template starts with 'Subject: ...' and a blank line; split it off."""
    first, _, rest = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError("a reply template must start with a 'Subject:' line")
    return first.removeprefix("Subject:").strip(), rest.lstrip("\n")


def render_reply(
    name: str,
    *,
    sender: str,
    to: str,
    domain: str,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    **ctx: object,
) -> EmailMessage:
    """Render a reply template into a ready EmailMessage marked as an auto-reply."""
    subject, body = split_subject(render_text(name, **ctx))
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Auto-Submitted"] = "auto-replied"
    msg["Precedence"] = "bulk"
    if reply_to:
        msg["Reply-To"] = reply_to
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body, charset="utf-8", cte=readable_cte(body))
    return msg


def readable_cte(text: str) -> str:
    """7bit for plain ASCII (links stay clickable even in raw source), else quoted-printable."""
    if text.isascii() and all(len(line) <= 990 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"
