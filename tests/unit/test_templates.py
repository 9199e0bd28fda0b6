"""Every template renders with the context the code passes, and reads well line by line."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from listserv import membership, notices
from listserv.commands import answer_no_command, run
from listserv.commands.help import listed_commands
from listserv.commands.registry import Context as CommandContext
from listserv.config import Config, Site
from listserv.digest.pulse import PulseLine
from listserv.render import render_reply, render_text, template_dir
from listserv.states import Delivery, MemberStatus
from listserv.store import Store, members
from listserv.store.tables import Member, Post
from tests.conftest import DOMAIN

LIST = f"networking@{DOMAIN}"
REQUEST = f"networking-request@{DOMAIN}"
ANN = "ann@example.com"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
# Sections of the one command reply (commands/results.txt), not mails of their own.
FRAGMENTS = {"commands/help.txt", "commands/info.txt"}
MAIL_FOLDERS = ("admin", "commands", "member")
ADDRESS_OR_URL = re.compile(r"\S*(?:@|://)\S*")
SIGN_OFF = re.compile(r"^(?:All the best|Good luck|Warm wishes|Best wishes|Thank you)\b.*,\S")


def template_names() -> list[str]:
    root = template_dir()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def line_problems(name: str, text: str) -> list[str]:
    """What a reader would trip over: glued sign-offs, long lines, Markdown, no Subject first.

    A line may run past 78 characters only for an address or a link (text beside it at most
    60); the Subject is a header and is folded by the mail library.
    """
    problems = []
    lines = text.splitlines()
    is_mail = name.split("/")[0] in MAIL_FOLDERS and name not in FRAGMENTS
    if is_mail and not (lines and lines[0].startswith("Subject: ") and lines[1:2] == [""]):
        problems.append("a mail template must start with 'Subject: ...' and a blank line")
    if "`" in text:
        problems.append("Markdown backticks show as-is in a plain-text mail")
    for i, line in enumerate(lines, 1):
        if SIGN_OFF.search(line) or re.search(r"[a-z],[A-Z]", line):
            problems.append(f"line {i}: a sign-off or sentence glued to the next word: {line!r}")
        if (
            len(line) > 78
            and not line.startswith("Subject: ")
            and not (ADDRESS_OR_URL.search(line) and len(ADDRESS_OR_URL.sub("", line)) <= 60)
        ):
            problems.append(f"line {i} is {len(line)} characters wide: {line!r}")
        if line == "-- " and lines[i - 2 : i - 1] != [""]:
            problems.append(f"line {i}: the signature separator needs a blank line above it")
        if is_mail and line.startswith("Subject:") and i > 1:
            problems.append(f"line {i}: a second Subject line")
    return problems


def rendered(name: str, ctx: dict[str, Any]) -> str:
    if name.split("/")[0] in MAIL_FOLDERS and name not in FRAGMENTS:
        text = render_text(name, **ctx)
        # ... and it must also build into a mail
        render_reply(name, sender=REQUEST, to=ANN, domain=DOMAIN, **ctx)
        return text
    return render_text(name, **ctx)


# ---------------------------------------------------------------- what the code really passes


@pytest.fixture
def passed(cfg: Config, store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict]]:
    """Run the real membership and command paths and record each mail template's context."""
    seen: dict[str, list[dict]] = {}
    real = notices.render_reply

    def record(name: str, **kw: Any) -> Any:
        ctx = {k: v for k, v in kw.items() if k not in ("sender", "to", "domain")}
        ctx = {k: v for k, v in ctx.items() if k not in ("reply_to", "in_reply_to")}
        seen.setdefault(name, []).append(ctx)
        return real(name, **kw)

    monkeypatch.setattr(notices, "render_reply", record)
    lst, site = cfg.lists["networking"], Site.of(cfg.server)
    with store.session() as s:

        def ctx(address: str = ANN) -> CommandContext:
            return CommandContext(s=s, cfg=cfg, lst=lst, site=site, now=NOW, address=address)

        for who, mode in (("reg@x.org", "regular"), ("dig@x.org", "digest")):
            c = ctx(who)
            membership.join(c, mode)
            token = c.replies[0].ctx["token"]
            membership.send_replies(c, [("join", "Almost done.")])
            c = ctx(who)
            membership.apply_token(c, token)  # the welcome
            membership.send_replies(c)
        c = ctx("alum@x.org")
        membership.add_by_admin(c, "alum@x.org", Delivery.ALUMNI)
        membership.send_notices(c)
        c = ctx("reg@x.org")
        c.result("leave", membership.leave(c, "unsubscribe", "unsubscribe"))
        membership.send_replies(c, c.results)
        c = ctx("dig@x.org")
        c.result("leave", membership.leave(c, "leave", "I got a job at Acme!"))
        membership.send_replies(c, c.results)
        c = ctx("dig@x.org")
        member = members.get_member(s, lst.name, "dig@x.org")
        assert member is not None and member.status == MemberStatus.ACTIVE
        membership.one_click_leave(c, member)
        membership.send_replies(c)
        c = ctx("reg@x.org")
        c.result("alumni", membership.choose_alumni(c))
        membership.send_replies(c, c.results)
        c = ctx("reg@x.org")
        run(c, [["help"], ["info"], ["join"]])
        membership.send_replies(c, c.results)
        c = ctx("stranger@x.org")
        answer_no_command(c, SimpleNamespace(message_id="<t@x.org>"))  # type: ignore[arg-type]
        s.commit()
    return seen


def test_real_paths_render_cleanly(passed: dict[str, list[dict]]):
    """The mails the membership and command code really sends have clean line structure."""
    assert {"member/welcome.txt", "member/alumni_welcome.txt", "commands/results.txt"} <= set(
        passed
    )
    for name, contexts in passed.items():
        for ctx in contexts:
            assert line_problems(name, rendered(name, ctx)) == [], name


def test_digest_welcome_says_how_often_and_a_leave_reason_is_said_once(
    passed: dict[str, list[dict]],
):
    """A digest member is told digests come once a week; 'unsubscribe' twice is one reason."""
    words = [c["delivery_words"] for c in passed["member/welcome.txt"]]
    assert "a digest of the posts once a week, on Mondays" in words
    assert [c["reason"] for c in passed["member/confirm_leave.txt"]] == ["unsubscribe"]


def test_samples_pass_what_the_code_passes(passed: dict[str, list[dict]], tmp_path: Path):
    """Each sample context below names exactly the keys the real code passes that template."""
    samples = sample_contexts(tmp_path)
    for name, contexts in passed.items():
        for ctx in contexts:
            assert set(samples[name]) == set(ctx), name


def test_every_template_renders_with_its_sample_and_reads_well(tmp_path: Path):
    """Every template renders (StrictUndefined) with its sample and has clean line structure."""
    samples = sample_contexts(tmp_path)
    assert set(template_names()) == set(samples), "add a sample context for each new template"
    for name in template_names():
        text = rendered(name, samples[name])
        assert text.strip() and "{{" not in text and "{%" not in text, name
        assert "None" not in text, f"{name} shows a missing value as 'None'"
        if not name.endswith(".html"):
            assert line_problems(name, text) == [], name


@pytest.mark.parametrize(
    ("name", "ctx_change", "sign_off"),
    [
        ("member/welcome.txt", {}, "Good luck with the search,"),
        ("member/alumni_welcome.txt", {"found_work": True}, "All the best in the new role,"),
        ("member/alumni_welcome.txt", {"found_work": False}, "All the best,"),
    ],
)
def test_sign_off_stands_on_its_own_line_above_the_list_name(tmp_path, name, ctx_change, sign_off):
    """'Good luck with the search,' and the list's name are two lines, not one."""
    ctx = {**sample_contexts(tmp_path)[name], **ctx_change}
    lines = render_text(name, **ctx).splitlines()
    assert lines[-2:] == [sign_off, "Tri-County Job Seekers Networking"]


def test_line_checks_catch_a_glued_sign_off_and_a_long_line():
    """The checker itself flags what issue 11 found."""
    text = "Subject: Hi\n\nGood luck with the search,Tri-County Job Seekers\n" + "x" * 85 + "\n"
    assert len(line_problems("member/welcome.txt", text)) == 2
    assert line_problems("member/welcome.txt", "Hello\n") != []
    assert line_problems("digest/toc.txt", "send `back`\n") != []


# ---------------------------------------------------------------- a sample per template


def sample_contexts(tmp_path: Path) -> dict[str, dict]:
    """A sample context for every template, with the keys the code that renders it passes."""
    from tests.conftest import make_config

    cfg = make_config(tmp_path)
    lst, site = cfg.lists["networking"], Site.of(cfg.server)
    mem = Member(
        list_name="networking",
        address=ANN,
        token="t0k3n",
        created_at=NOW,
        status="active",
        bounce_score=5.0,
    )
    post = Post(
        id=7,
        list_name="networking",
        sender=ANN,
        from_header=f"Ann Lee <{ANN}>",
        subject="Anyone hiring?",
        received_at=NOW,
        raw=b"",
    )
    links = {
        "unsubscribe_url": f"{site.base_url}/u/t0k3n",
        "leave_address": f"networking-leave+t0k3n@{DOMAIN}",
        "alumni_url": f"{site.base_url}/a/t0k3n",
        "alumni_address": f"networking-alumni+t0k3n@{DOMAIN}",
    }
    confirm = {
        "token": "c0de",
        "confirm_address": f"networking-confirm+c0de@{DOMAIN}",
        "confirm_url": f"{site.base_url}/c/c0de",
        "days": 7,
    }
    base = {"lst": lst, "site": site, "request": REQUEST, "post_address": f"networking@{DOMAIN}"}
    section = {"lst": lst, "request": REQUEST, "post_address": f"networking@{DOMAIN}"}
    topics = [{"number": 1, "subject": "Anyone hiring?", "name": "Ann Lee"}]
    digest = {
        "title": lst.display_title,
        "heading": "Weekly digest, 23 Nov 2026 (1 message)",
        "count_text": "1 message",
        "span": "on 23 Nov 2026",
        "date": "23 Nov 2026",
        "request_address": REQUEST,
        "topics": topics,
    }
    pulse = [PulseLine("Posts about hiring", "12", "fewer than 3", "up", "▁▂▃▄▅█", 100, 0)]
    alumni = {
        "title": lst.display_title,
        "heading": "Alumni update, October 2026",
        "span": "in October 2026",
        "field": "Healthcare",
        "field_pulse": pulse,
        "fields": ["Healthcare"],
        "highlights": [{"subject": "Anyone hiring?", "replies": 2, "excerpt": "Acme is hiring."}],
        "pulse": pulse,
        "now_word": "this month",
        "before_word": "last month",
        "trend_word": "last six months",
        "list_address": LIST,
        "request_address": REQUEST,
    }
    help_text = render_text("commands/help.txt", commands=listed_commands(), **section)
    samples: dict[str, dict] = {
        "admin/approve_join.txt": {"address": ANN, **confirm},
        "admin/bounce_report.txt": {"member": mem, "last_error": "550 5.1.1 no such user"},
        "admin/delivery_failed.txt": {"recipient": ANN, "error": "451 try later"},
        "admin/held.txt": {"post": post, "reason": "not a member"},
        "admin/inbound_parked.txt": {
            "inbound_id": 7,
            "mail_from": ANN,
            "from_header": f"Ann <{ANN}>",
            "subject": "Hello",
            "error": "RecursionError: maximum recursion depth exceeded",
            "attempts": 5,
        },
        "commands/results.txt": {
            "results": [("join", "Almost done."), ("help", help_text.strip("\n"))]
        },
        "commands/no_command.txt": {"owner_address": f"networking-owner@{DOMAIN}"},
        "member/alumni_welcome.txt": {
            "member": mem,
            "found_work": True,
            "fields": ["Healthcare", "Education"],
            **links,
        },
        "member/back.txt": {
            "member": mem,
            "announce_address": f"networking-announce+t0k3n@{DOMAIN}",
            "days": 14,
            "field": "",
            "fields": ["Healthcare", "Education"],
            **links,
        },
        "member/bad_announce.txt": {"problem": "That announcement address is unknown."},
        "admin/stats.txt": {
            "months": 1,
            "rows": [
                {
                    "month": "2026-11",
                    **dict.fromkeys(
                        (
                            "joins leaves job_leaves alumni_switches alumni_left backs "
                            "hiring_posts layoff_posts regular digest alumni"
                        ).split(),
                        3,
                    ),
                }
            ],
        },
        "member/bad_token.txt": {},
        "member/confirm_join.txt": {**confirm, "delivery": "digest"},
        "member/confirm_change.txt": {
            **confirm,
            "changes": [["mode", "digest"]],
            "what": ["you will get a digest of the posts"],
        },
        "member/confirm_leave.txt": {
            **confirm,
            **links,
            "reason": "asked to leave",
            "offer_alumni": True,
        },
        "member/disabled.txt": {"member": mem},
        "member/goodbye.txt": {"member": mem, "offer_alumni": True, **links},
        "member/held.txt": {"subject": "Anyone hiring?", "reason": "not a member"},
        "member/job_ask.txt": {
            **confirm,
            **links,
            "reason": "found work: got a job",
            "found_work": True,
        },
        "member/probe.txt": {"member": mem},
        "member/rejected.txt": {"subject": "Anyone hiring?", "reason": "only members may post"},
        "member/welcome.txt": {
            "member": mem,
            "delivery_words": "a digest of the posts once a week, on Mondays",
            "fields": ["Healthcare"],
            **links,
        },
        "digest/plain.txt": {
            **digest,
            "messages": [
                {"headers": [("From", "Ann Lee"), ("Subject", "Hi")], "body": "Hello all."}
            ],
        },
        "digest/toc.txt": {**digest, "reply_to_list": True, "list_address": LIST},
        "digest/toc.html": {
            **digest,
            "reply_to_list": True,
            "list_address": LIST,
            "messages": [
                {"headers": [("From", "Ann Lee"), ("Subject", "Hi")], "body": "Hello all."}
            ],
        },
        "digest/alumni.txt": alumni,
        "digest/alumni.html": alumni,
        "web/page.html": {
            "title": "Leave?",
            "paragraphs": ("Press the button.",),
            "button": "Unsubscribe",
            "action": "/u/t0k3n",
            "fields": (("List-Unsubscribe", "One-Click"),),
            "footer": "Opening this page changes nothing.",
        },
    }
    out = {
        name: {**base, **ctx} if name.split("/")[0] in MAIL_FOLDERS else ctx
        for name, ctx in samples.items()
    }
    out["commands/help.txt"] = {**section, "commands": listed_commands()}
    member_sample = {"member": mem, "policy": "members may post"}
    out["commands/info.txt"] = {**section, **member_sample}
    return out
