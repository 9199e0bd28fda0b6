"""Fields (issue 13): set by command and by a one-word reply, posts tagged, a pulse per field,
the HTML part, 'I'm back' reaching the group, and the organiser's stats."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import UTC, datetime, timedelta

from sqlmodel import select
from typer.testing import CliRunner

from listserv.cli import app
from listserv.digest.runs import run_digest
from listserv.store import members
from listserv.store.tables import ListState, Post
from tests.conftest import DOMAIN, add_members, mails_to, member, send_to_list, settled

REQUEST = f"networking-request@{DOMAIN}"
LIST = f"networking@{DOMAIN}"
ANN, BOB, CAROL = "ann@example.com", "bob@example.net", "carol@example.org"


def text_of(msg) -> str:  # type: ignore[no-untyped-def]
    part = msg.get_body(("plain",))
    return part.get_content().replace("\r\n", "\n")


def set_field(srv, address: str, field: str) -> None:  # type: ignore[no-untyped-def]
    with srv.store.session() as s:
        m = members.get_member(s, "networking", address)
        members.set_field(s, m, field)


def posts(srv) -> list[Post]:  # type: ignore[no-untyped-def]
    with srv.store.session() as s:
        return list(s.exec(select(Post).order_by(Post.id)))


async def test_member_sets_a_field_by_command_and_by_a_one_word_reply(server, sink):
    """'field helthcare' sets Healthcare; replying just 'software' to the alumni note sets
    Software & IT; 'field' alone lists the fields and the member's own; 'field none' clears."""
    add_members(server, ANN)
    await send_to_list(server, ANN, REQUEST, "field helthcare")
    [reply] = await mails_to(sink, ANN)
    assert "Done: your field is now Healthcare." in reply.get_content()
    assert member(server, ANN).field == "Healthcare"

    await send_to_list(server, ANN, REQUEST, "alumni")
    [_, note] = await mails_to(sink, ANN, 2)
    assert "Reply with just its name" in note.get_content()
    await send_to_list(
        server,
        ANN,
        REQUEST,
        f"Re: {note['Subject']}",
        "Software\n\nOn Tue, the list wrote:\n> Reply with just its name\n",
    )
    [*_, done] = await mails_to(sink, ANN, 3)
    assert "Done: your field is now Software & IT." in done.get_content()
    assert member(server, ANN).field == "Software & IT"

    await send_to_list(server, ANN, REQUEST, "field")
    [*_, listed] = await mails_to(sink, ANN, 4)
    assert "Healthcare; Software & IT;" in listed.get_content()
    assert "Yours is Software & IT." in listed.get_content()
    await send_to_list(server, ANN, REQUEST, "field none")
    await mails_to(sink, ANN, 5)
    assert member(server, ANN).field == ""


async def test_posts_are_tagged_with_the_fields_their_own_words_name(server, sink):
    """A post naming nurses is tagged Healthcare; a developer only in quoted text is not."""
    add_members(server, CAROL)
    await send_to_list(
        server,
        CAROL,
        LIST,
        "Openings at St. Mary's",
        "Our hospital is hiring nurses this month.\n\nOn Mon, Bob wrote:\n> any developer jobs?\n",
    )
    await settled(server)
    [post] = posts(server)
    assert post.fields == "Healthcare" and post.topic == "hiring"


async def two_fields_world(srv, sink) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Ann (Healthcare) and Bob (Software & IT) are alumni; this month three Healthcare hiring
    posts and one Software one came in by SMTP; last month's posts were stored then."""
    while any(t.get_name() == "digest-catch-up" for t in asyncio.all_tasks()):
        await asyncio.sleep(0.01)  # the start-up catch-up must not see the back-dated list
    now = datetime.now(UTC)
    add_members(srv, CAROL, "dave@example.com", "erin@example.com", "fay@example.com")
    add_members(srv, ANN, BOB, delivery="alumni")
    for who in (ANN, "dave@example.com", "erin@example.com", "fay@example.com"):
        set_field(srv, who, "Healthcare")
    set_field(srv, BOB, "Software & IT")
    with srv.store.session() as s:
        s.get(ListState, "networking").first_seen = now - timedelta(days=30)
        for i, (field, count) in enumerate((("Healthcare", 5), ("Software & IT", 4))):
            for j in range(count):
                s.add(
                    Post(
                        list_name="networking",
                        message_id=f"<old-{i}-{j}@example.org>",
                        sender=CAROL,
                        subject=f"Old hiring post {i}-{j}",
                        received_at=now - timedelta(days=40),
                        raw=b"Subject: old\r\n\r\nold\r\n",
                        topic="hiring",
                        fields=field,
                    )
                )
    for n in range(3):
        await send_to_list(
            srv, CAROL, LIST, f"Nurse openings {n}", "Our clinic is hiring nurses, apply now."
        )
    await send_to_list(srv, CAROL, LIST, "Developers wanted", "Acme is hiring developers.")
    await settled(srv)
    sink.clear()
    run_digest(srv.store, srv.cfg, "networking", "alumni", datetime.now(UTC))
    srv.deliverer.wake()
    [ann] = await mails_to(sink, ANN)
    [bob] = await mails_to(sink, BOB)
    return ann, bob


async def test_two_alumni_in_different_fields_get_their_own_field_first(server, sink):
    """Each alumnus's update leads with their field's counts and trends, then the group; the
    HTML part beside the text shows the same numbers."""
    ann, bob = await two_fields_world(server, sink)
    a, b = text_of(ann), text_of(bob)
    assert "Your field: Healthcare" in a and "Your field:" in b and "Healthcare" not in b
    assert a.index("Your field: Healthcare") < a.index("The whole group")
    assert "Your field: Software & IT" in b
    section_a = a[a.index("Your field") : a.index("The whole group")]
    section_b = b[b.index("Your field") : b.index("The whole group")]
    assert "3 this month, down from 5 last month." in section_a  # hiring posts
    assert "4 this month, up from none last month." in section_a  # new members in the field
    assert "Fewer than 3 this month, down from 4 last month." in section_b
    assert "Fewer than 3 this month, about the same as last month (none)." in section_b
    assert "Last six months: ▁▁▁▁█▅" in section_a  # hiring: 5 last month, 3 now
    group_a, group_b = a[a.index("The whole group") :], b[b.index("The whole group") :]
    assert "4 this month, down from 9 last month." in group_a  # hiring posts, everyone's
    assert group_a.split("Highlights")[0] == group_b.split("Highlights")[0]
    assert ann["List-Unsubscribe"] and ann["List-Id"] == bob["List-Id"]
    html_part_shows_the_numbers_the_text_shows(ann)
    [summary] = await mails_to(sink, "owner@example.org")  # the organiser's view, same schedule
    assert "how the list did" in summary["Subject"]
    assert re.search(r"Posts about hiring +(\d+ +){5}4\r?\n", summary.get_content())


def html_part_shows_the_numbers_the_text_shows(ann) -> None:  # type: ignore[no-untyped-def]
    """multipart/alternative, plain first; every pulse sentence of the text is in the HTML,
    and the HTML has no figure the text lacks; no remote images."""
    assert ann.get_content_type() == "multipart/alternative"
    plain, page = ann.get_payload()
    assert (plain.get_content_type(), page.get_content_type()) == ("text/plain", "text/html")
    text, markup = text_of(ann), html.unescape(page.get_content())
    sentences = re.findall(r"^    (.* this month, .*)\.$", text, re.M)
    assert len(sentences) == 9  # four for the field, five for the group
    for sentence in sentences:
        assert sentence in markup
    assert len(re.findall(r" this month, ", markup)) == len(sentences)
    assert "<img" not in markup and "http" not in markup


async def test_back_members_announcement_is_posted_once_as_their_own_post(server, sink):
    """'back' names NAME-announce+TOKEN; a mail there reaches the list once, under "Back on the
    market: ...", from the member; a second mail to it is refused."""
    add_members(server, CAROL)
    add_members(server, ANN, delivery="alumni")
    await send_to_list(server, ANN, REQUEST, "back")
    [welcome] = await mails_to(sink, ANN)
    found = re.search(rf"networking-announce\+[0-9a-f]+@{re.escape(DOMAIN)}", welcome.get_content())
    assert found and "Welcome back" in welcome.get_content()
    await send_to_list(server, ANN, found[0], "Nurse, 10 years ICU", "Glad to be back.")
    [note] = await mails_to(sink, CAROL)
    assert note["Subject"] == "[networking] Back on the market: Nurse, 10 years ICU"
    assert ANN in note["From"]
    await send_to_list(server, ANN, found[0], "Again", "Twice?")
    await settled(server)
    assert len(sink.to(CAROL)) == 1
    assert [p.status for p in posts(server)] == ["accepted"]
    assert "not posted" in sink.to(ANN)[-1].msg["Subject"]


async def test_announcement_on_a_moderated_list_is_held_like_any_post(server_factory, sink):
    """The announcement goes through the list's moderation: on a moderated list it is held."""
    srv = await server_factory(list_extra='posting = "moderated"\n')
    add_members(srv, ANN, delivery="alumni")
    await send_to_list(srv, ANN, REQUEST, "back")
    [welcome] = await mails_to(sink, ANN)
    found = re.search(rf"networking-announce\+[0-9a-f]+@{re.escape(DOMAIN)}", welcome.get_content())
    assert found
    await send_to_list(srv, ANN, found[0], "Looking again", "Hi all.")
    await settled(srv)
    [post] = posts(srv)
    assert (post.status, post.subject) == ("held", "Back on the market: Looking again")


async def test_stats_json_counts_the_events_of_this_month(server, sink):
    """Joins, job leaves, alumni switches, comebacks, full alumni leaves and posts add up."""
    add_members(server, ANN, BOB, CAROL)
    await send_to_list(server, ANN, REQUEST, "leave", "I got a job at Acme, starting Monday!")
    await send_to_list(server, BOB, REQUEST, "alumni")
    await send_to_list(server, CAROL, LIST, "Acme is hiring", "Acme is hiring analysts.")
    await settled(server)
    await send_to_list(server, BOB, REQUEST, "back")
    await settled(server)
    with server.store.session() as s:  # Ann leaves the alumni fully
        members.remove(s, members.get_member(s, "networking", ANN), datetime.now(UTC), "test")
    result = CliRunner().invoke(
        app, ["stats", "networking", "--months", "2", "--json", "--config", str(server.cfg.path)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    table = CliRunner().invoke(app, ["stats", "networking", "--config", str(server.cfg.path)])
    assert table.exit_code == 0 and "left for a job" in table.stdout
    assert len(rows) == 2 and rows[-1]["month"] == datetime.now(UTC).strftime("%Y-%m")
    assert rows[-1] == {
        "month": rows[-1]["month"],
        "joins": 3,
        "leaves": 0,
        "job_leaves": 1,
        "alumni_switches": 2,
        "alumni_left": 1,
        "backs": 1,
        "hiring_posts": 1,
        "layoff_posts": 0,
        "regular": 2,
        "digest": 0,
        "alumni": 0,
    }


def test_members_add_with_a_field_shows_it_in_members_list_json(tmp_path):
    """'members add --field helthcare' stores Healthcare; an unknown field exits 2 naming them."""
    from tests.conftest import config_text

    conf = tmp_path / "listserv.toml"
    conf.write_text(config_text())
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["members", "add", "networking", ANN, "--field", "helthcare", "--no-welcome"]
        + ["--config", str(conf)],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["members", "list", "networking", "--json", "--config", str(conf)])
    [row] = json.loads(listed.stdout)
    assert row["field"] == "Healthcare"
    bad = runner.invoke(
        app, ["members", "add", "networking", BOB, "--field", "farming", "--config", str(conf)]
    )
    assert bad.exit_code == 2 and "is not one of this list's fields" in bad.output
