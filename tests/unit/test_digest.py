"""Digest builders: MIME and RFC 1153 regular digests, subjects, highlights, the alumni pulse."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listserv.config import parse_config
from listserv.digest.build import (
    DigestPost,
    build_alumni_digest,
    build_regular_digest,
    cadence_word,
    digest_subject,
    pick_highlights,
)
from listserv.digest.pulse import PeriodCounts, pulse_lines

DOMAIN = "lists.example.org"
WEEK_END = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
MONTH_START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
MONTH_END = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def make_list(
    digest: str = "0 8 * * mon",
    alumni: str = "0 8 1 * *",
    highlights: int = 5,
    prefix: str = "[networking] ",
):
    text = f"""
        [lists.networking]
        title = "Tri-County Job Seekers Networking"
        subject_prefix = "{prefix}"
        [lists.networking.digest]
        schedule = "{digest}"
        [lists.networking.alumni]
        schedule = "{alumni}"
        highlights = {highlights}
    """
    return parse_config(textwrap.dedent(text), Path("test.toml")).lists["networking"]


def make_post(
    raw: str | bytes, day: int, *, thread: str | None = None, topic: str | None = None
) -> DigestPost:
    """A DigestPost from literal message text, received on that day of November 2026."""
    if isinstance(raw, str):
        raw = textwrap.dedent(raw).lstrip().encode()
    msg = message_from_bytes(raw, policy=default)
    mid = str(msg["Message-ID"])
    return DigestPost(
        raw=raw,
        sender=str(msg["From"]),
        subject=str(msg["Subject"]),
        received_at=datetime(2026, 11, day, 9, 0, tzinfo=UTC),
        message_id=mid,
        thread_key=thread or mid,
        topic=topic,
    )


FAIR = make_post(
    """
    From: Ann Lee <ann@example.com>
    To: networking@lists.example.org
    Received: from mx.example.com by lists.example.org
    Subject: Job fair at the library on Friday
    Date: Mon, 16 Nov 2026 09:00:00 +0000
    Message-ID: <fair@example.com>

    Hi all,
    The county job fair is on Friday at the main library, 10 to 4.
    Email me at ann@example.com or call 555-123-4567 if you want a ride.
    ------------------------------
    Thanks, Ann
    --\x20
    Ann Lee, Springfield
""",
    16,
    topic="hiring",
)

FAIR_REPLY = make_post(
    """
    From: Bob Stone <bob@example.net>
    To: networking@lists.example.org
    Subject: Re: Job fair at the library on Friday
    Message-ID: <fair-reply@example.net>
    In-Reply-To: <fair@example.com>

    > The county job fair is on Friday
    Count me in, Ann.
""",
    17,
    thread="<fair@example.com>",
)

LAYOFFS = make_post(
    """
    From: Carol Diaz <carol@example.org>
    Subject: Acme is cutting 200 jobs
    Message-ID: <acme@example.org>

    Heard today that Acme is cutting 200 jobs in the new year.
""",
    18,
    topic="layoff",
)

HTML_ONLY = make_post(
    """
    From: dana@example.com
    Subject: Resume workshop
    Message-ID: <html@example.com>
    MIME-Version: 1.0
    Content-Type: text/html; charset=utf-8

    <html><head><style>p { color: red }</style></head>
    <body><p>The resume <b>workshop</b> moved to Tuesday.</p>
    <p>Bring&nbsp;3 copies &amp; a pen.</p></body></html>
""",
    19,
)

LATIN1 = make_post(
    b"From: =?iso-8859-1?q?Jos=E9_P=E9rez?= <jose@example.com>\n"
    b"Subject: =?iso-8859-1?q?Entrevista_en_M=E9xico?=\n"
    b"Message-ID: <latin1@example.com>\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: 8bit\n\n"
    b"Tengo una entrevista ma\xf1ana en el caf\xe9.\n",
    20,
)

UTF8 = make_post(
    "From: Zoë Ng <zoe@example.com>\n"
    "Subject: =?utf-8?q?Caf=C3=A9_meetup_=E2=98=95?=\n"
    "Message-ID: <utf8@example.com>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n\n"
    "Naïve question: who’s going to the Zürich fair?\n".encode(),
    21,
)

POSTS = [FAIR, FAIR_REPLY, LAYOFFS, HTML_ONLY]


def reparse(msg):
    return message_from_bytes(msg.as_bytes(), policy=default)


def text_of(part) -> str:
    """A text part's content (the plain one of an alternative) with CRLF read as newlines."""
    if part.get_content_type() == "multipart/alternative":
        part = part.get_body(("plain",))
    return part.get_content().replace("\r\n", "\n")


def mime_digest(posts=POSTS, **kw):
    return build_regular_digest(
        make_list(**kw), DOMAIN, posts, period_end=WEEK_END, tz=UTC, fmt="mime"
    )


def plain_text(posts=POSTS):
    msg = build_regular_digest(make_list(), DOMAIN, posts, period_end=WEEK_END, tz=UTC, fmt="plain")
    return text_of(reparse(msg))


THIS_MONTH, LAST_MONTH = PeriodCounts(5, 2, 3, 0), PeriodCounts(1, 4, 3, 7)


def alumni_text(posts=POSTS, **kw):
    msg = build_alumni_digest(
        make_list(**kw),
        DOMAIN,
        posts,
        THIS_MONTH,
        LAST_MONTH,
        period_start=MONTH_START,
        period_end=MONTH_END,
        tz=UTC,
    )
    return text_of(reparse(msg))


# --- MIME digest -----------------------------------------------------------------------------


def test_mime_digest_parses_back_into_toc_and_one_message_per_post():
    """multipart/mixed: the TOC as text and HTML (multipart/alternative), then multipart/digest
    with one message/rfc822 per post."""
    top = reparse(mime_digest())
    toc, digest = top.get_payload()
    assert top.get_content_type() == "multipart/mixed"
    assert toc.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in toc.get_payload()] == ["text/plain", "text/html"]
    assert digest.get_content_type() == "multipart/digest"
    parts = digest.get_payload()
    assert [p.get_content_type() for p in parts] == ["message/rfc822"] * 4
    subjects = [p.get_content()["Subject"] for p in parts]
    assert subjects == [p.subject for p in POSTS]


def test_mime_digest_toc_lists_subjects_senders_and_how_to_switch_or_leave():
    """The TOC numbers posts with their senders' names and says how to get posts singly or leave."""
    toc = text_of(reparse(mime_digest()).get_payload()[0])
    assert "1. Job fair at the library on Friday (Ann Lee)" in toc
    assert "2. Re: Job fair at the library on Friday (Bob Stone)" in toc
    assert "4. Resume workshop (dana@example.com)" in toc
    assert "from 16 Nov 2026 to 23 Nov 2026" in toc
    assert '"regular" to networking-request@lists.example.org' in toc
    assert '"leave" to networking-request@lists.example.org' in toc


def test_mime_digest_embeds_each_post_unchanged_but_for_a_reply_to_the_list():
    """An embedded post keeps all its headers (Received too) and its body; on a reply_to =
    "list" list it gains the Reply-To a regular copy has, so replying from the digest works."""
    inner = reparse(mime_digest([FAIR])).get_payload()[1].get_payload()[0].get_content()
    original = message_from_bytes(FAIR.raw, policy=default)
    assert [kv for kv in inner.items() if kv[0] != "Reply-To"] == original.items()
    assert inner["Reply-To"] == "networking@lists.example.org"
    assert text_of(inner) == original.get_content()


def test_mime_digest_keeps_latin1_and_utf8_posts_intact():
    """8-bit ISO-8859-1 and UTF-8 posts decode to the same text after the round trip."""
    top = reparse(mime_digest([LATIN1, UTF8]))
    inner = [p.get_content() for p in top.get_payload()[1].get_payload()]
    assert text_of(inner[0]) == "Tengo una entrevista mañana en el café.\n"
    assert text_of(inner[1]) == "Naïve question: who’s going to the Zürich fair?\n"
    toc = text_of(top.get_payload()[0])
    assert "Entrevista en México (José Pérez)" in toc
    assert "Café meetup ☕ (Zoë Ng)" in toc


def test_digest_carries_from_to_subject_date_and_message_id_but_no_list_headers():
    """The caller adds List-* and Precedence per member, so the builder leaves them out."""
    msg = reparse(mime_digest())
    assert msg["From"].addresses[0].display_name == "Tri-County Job Seekers Networking"
    assert msg["From"].addresses[0].addr_spec == "networking@lists.example.org"
    assert msg["To"] == "networking@lists.example.org"
    assert msg["Subject"] == "[networking] Weekly digest, 23 Nov 2026 (4 messages)"
    assert msg["Date"].datetime == WEEK_END
    assert msg["Message-ID"].endswith("@lists.example.org>")
    assert msg["MIME-Version"] == "1.0"
    assert not [k for k in msg if k.lower().startswith("list-") or k == "Precedence"]


def test_regular_digest_refuses_no_posts_and_unknown_formats():
    """No posts means no digest; a format other than mime or plain is a caller error."""
    with pytest.raises(ValueError, match="at least one post"):
        build_regular_digest(make_list(), DOMAIN, [], period_end=WEEK_END, tz=UTC, fmt="mime")
    with pytest.raises(ValueError, match="'html'"):
        build_regular_digest(make_list(), DOMAIN, POSTS, period_end=WEEK_END, tz=UTC, fmt="html")


# --- RFC 1153 digest -------------------------------------------------------------------------


def test_plain_digest_follows_rfc1153_separators_and_trailer():
    """70 hyphens then a blank line after the preamble; 30 hyphens with blank lines round them;
    'End of ... Digest' and a line of asterisks at the end."""
    lines = plain_text().splitlines()
    assert lines.count("-" * 70) == 1
    at = lines.index("-" * 70)
    assert lines[at + 1] == "" and lines[at + 2].startswith("Date: ")
    seps = [i for i, line in enumerate(lines) if line == "-" * 30]
    assert len(seps) == len(POSTS)
    assert all(lines[i - 1] == "" and lines[i + 1] == "" for i in seps)
    end_line, stars = lines[-2], lines[-1]
    assert end_line == "End of Tri-County Job Seekers Networking Digest, 23 Nov 2026"
    assert stars == "*" * len(end_line)
    assert seps[-1] + 2 == len(lines) - 2


def test_plain_digest_lists_todays_topics_before_the_messages():
    """The preamble names the list and date and lists each subject with its sender."""
    text = plain_text()
    preamble = text.split("-" * 70)[0]
    assert preamble.startswith("Tri-County Job Seekers Networking Digest, 23 Nov 2026")
    assert "Today's Topics:" in preamble
    assert "3. Acme is cutting 200 jobs (Carol Diaz)" in preamble
    assert '"regular" to networking-request@lists.example.org' in preamble


def test_plain_digest_keeps_only_rfc1153_headers_in_order():
    """Date, From, To, Subject, Message-ID stay in RFC 1153 order; Received and the rest go."""
    first = plain_text([FAIR]).split("-" * 70)[1].split("\n\n")[1]
    assert [line.split(":")[0] for line in first.splitlines()] == [
        "Date",
        "From",
        "To",
        "Subject",
        "Message-ID",
    ]
    assert "Received" not in plain_text([FAIR])


def test_plain_digest_blanks_body_lines_of_thirty_hyphens():
    """A body line of exactly 30 hyphens would read as a separator, so its first one is blanked."""
    text = plain_text([FAIR])
    assert "\n " + "-" * 29 + "\n" in text
    assert text.splitlines().count("-" * 30) == 1


def test_plain_digest_shows_html_only_posts_as_text():
    """An HTML-only post appears with its tags, styles and entities turned into plain text."""
    text = plain_text([HTML_ONLY])
    assert "The resume workshop moved to Tuesday." in text
    assert "Bring 3 copies & a pen." in text
    assert "<p>" not in text and "<b>" not in text and "color" not in text


def test_plain_digest_keeps_latin1_and_utf8_text():
    """Bodies and headers in ISO-8859-1 and UTF-8 come out decoded in one UTF-8 digest."""
    msg = build_regular_digest(
        make_list(), DOMAIN, [LATIN1, UTF8], period_end=WEEK_END, tz=UTC, fmt="plain"
    )
    assert msg.get_body(("plain",)).get_content_charset() == "utf-8"
    text = text_of(reparse(msg))
    assert "Tengo una entrevista mañana en el café." in text
    assert "Naïve question: who’s going to the Zürich fair?" in text
    assert "Subject: Entrevista en México" in text
    assert "From: José Pérez <jose@example.com>" in text


def test_plain_digest_reads_raw_8bit_headers_and_notes_left_out_attachments():
    """Undeclared 8-bit headers are read as Latin-1 or UTF-8; attachments leave a short note."""
    raw = (
        b"From: Jos\xe9 <jose@example.com>\nSubject: CV caf\xe9\nMessage-ID: <cv@example.com>\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
        b"--B\nContent-Type: text/plain\n\nMy CV is attached.\n"
        b"--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=cv.pdf\n"
        b"Content-Transfer-Encoding: base64\n\nJVBERi0=\n--B--\n"
    )
    text = plain_text([make_post(raw, 20)])
    assert "From: José <jose@example.com>" in text and "Subject: CV café" in text
    assert "My CV is attached.\n\n[1 attachment left out of this plain-text digest]" in text
    assert "JVBERi0" not in text


# --- subjects and cadence --------------------------------------------------------------------


@pytest.mark.parametrize(
    "cron, word",
    [
        ("0 8 * * *", "Daily"),
        ("30 6 * * mon", "Weekly"),
        ("0 8 * * 1", "Weekly"),
        ("0 8 1 * *", "Monthly"),
        ("*/15 * * * *", ""),
        ("0 8,20 * * *", ""),
        ("0 8 * * mon-fri", ""),
        ("0 8 1 1 *", ""),
    ],
)
def test_cadence_word_names_daily_weekly_and_monthly_crons(cron, word):
    """Once a day, week or month gets its word; anything else gets none."""
    assert cadence_word(cron) == word


def test_regular_subject_has_cadence_date_and_message_count():
    """'[networking] Weekly digest, 23 Nov 2026 (12 messages)', singular for one message."""
    lst = make_list()
    assert digest_subject(lst, "regular", WEEK_END, 12, UTC) == (
        "[networking] Weekly digest, 23 Nov 2026 (12 messages)"
    )
    assert digest_subject(lst, "regular", WEEK_END, 1, UTC) == (
        "[networking] Weekly digest, 23 Nov 2026 (1 message)"
    )


def test_regular_subject_follows_schedule_prefix_and_time_zone():
    """Daily schedules say 'Daily', odd ones just 'Digest'; no stray space; the local date."""
    late = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert digest_subject(make_list(digest="0 8 * * *"), "regular", late, 2, UTC) == (
        "[networking] Daily digest, 23 Nov 2026 (2 messages)"
    )
    assert (
        digest_subject(
            make_list(digest="0 */6 * * *", prefix=""), "regular", late, 2, ZoneInfo("Asia/Tokyo")
        )
        == "Digest, 24 Nov 2026 (2 messages)"
    )


def test_alumni_subject_names_the_month_the_update_covers():
    """A monthly update sent on 1 December is the November update."""
    assert digest_subject(make_list(), "alumni", MONTH_END, 0, UTC) == (
        "[networking] Alumni update, November 2026"
    )
    assert digest_subject(make_list(alumni="0 8 * * mon"), "alumni", WEEK_END, 0, UTC) == (
        "[networking] Alumni update, 23 Nov 2026"
    )


def test_alumni_subject_and_body_name_the_same_time():
    """A first, short run is named by its real dates in both places, never by last month."""
    start = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert digest_subject(make_list(), "alumni", MONTH_END, 0, UTC, start) == (
        "[networking] Alumni update, 1 Dec 2026"
    )
    msg = build_alumni_digest(
        make_list(),
        DOMAIN,
        [],
        PeriodCounts(1, 0, 0, 0),
        PeriodCounts(0, 0, 0, 0),
        period_start=start,
        period_end=MONTH_END,
        tz=UTC,
    )
    assert msg["Subject"] == "[networking] Alumni update, 1 Dec 2026"
    assert "went on the list on 1 Dec 2026." in text_of(reparse(msg))
    assert "in November 2026" in alumni_text()


def test_digest_subject_refuses_unknown_kinds():
    """Only 'regular' and 'alumni' digests exist."""
    with pytest.raises(ValueError, match="'weekly'"):
        digest_subject(make_list(), "weekly", WEEK_END, 1, UTC)


# --- highlights ------------------------------------------------------------------------------


def _reply(n: int, to: DigestPost, day: int) -> DigestPost:
    return make_post(
        f"""
        From: Replier {n} <r{n}@example.com>
        Subject: Re: {to.subject}
        Message-ID: <r{n}-{to.message_id.strip("<>")}>

        Me too.
    """,
        day,
        thread=to.message_id,
    )


def test_pick_highlights_ranks_threads_by_replies_then_earliest():
    """More replies first; equal replies: the thread that started first."""
    posts = [
        FAIR,
        LAYOFFS,
        HTML_ONLY,
        _reply(1, HTML_ONLY, 20),
        _reply(2, HTML_ONLY, 21),
        _reply(3, LAYOFFS, 22),
        _reply(4, FAIR, 22),
    ]
    picked = pick_highlights(posts, 5)
    assert [(h.subject, h.replies) for h in picked] == [
        ("Resume workshop", 2),
        ("Job fair at the library on Friday", 1),
        ("Acme is cutting 200 jobs", 1),
    ]


def test_pick_highlights_stops_at_the_limit():
    """No more than limit highlights, and none for a limit of 0."""
    posts = [FAIR, LAYOFFS, HTML_ONLY, LATIN1]
    assert len(pick_highlights(posts, 2)) == 2
    assert pick_highlights(posts, 0) == []
    assert pick_highlights([], 5) == []


def test_highlight_of_a_thread_started_earlier_uses_its_first_post_in_the_period():
    """Replies to an older thread still make a highlight, titled without 'Re:'."""
    [h] = pick_highlights([FAIR_REPLY], 5)
    assert h.subject == "Job fair at the library on Friday"
    assert h.replies == 1


def test_highlight_excerpt_is_short_and_names_no_one():
    """The excerpt skips greetings, quotes and signatures, drops addresses, phones and names."""
    long_post = make_post(
        """
        From: Ann Lee <ann@example.com>
        Subject: Long one
        Message-ID: <long@example.com>

        """
        + "Interview tips that worked for me. " * 20,
        16,
    )
    [fair] = pick_highlights([FAIR, FAIR_REPLY], 1)
    assert fair.excerpt.startswith("The county job fair is on Friday at the main library")
    for private in ("ann@example.com", "555-123-4567", "Ann", "Lee", "Springfield", "Bob", "---"):
        assert private not in fair.excerpt
    [long] = pick_highlights([long_post], 1)
    assert len(long.excerpt) <= 200 and long.excerpt.endswith("…")


# --- the pulse -------------------------------------------------------------------------------


def test_pulse_lines_show_each_figure_against_the_previous_period():
    """Joins, job leaves, comebacks, hiring and layoff posts, in that order, each with a trend."""
    lines = pulse_lines(PeriodCounts(12, 3, 9, 4, 5), PeriodCounts(8, 5, 9, 0, 0))
    assert [(p.shown_now, p.shown_before, p.trend) for p in lines] == [
        ("12", "8", "up"),
        ("3", "5", "down"),
        ("5", "none", "up"),
        ("9", "9", "flat"),
        ("4", "none", "up"),
    ]
    assert "layoff" in lines[0].label and "found work" in lines[1].label
    assert "came back" in lines[2].label
    assert "hiring" in lines[3].label and "layoffs" in lines[4].label


def test_pulse_lines_mask_counts_below_three():
    """1 and 2 read 'fewer than 3', 0 reads 'none'; a masked count against another masked one
    or none is no visible change (no "Fewer than 3 this month, none last month: up")."""
    lines = pulse_lines(PeriodCounts(1, 2, 0, 3, 0), PeriodCounts(2, 0, 1, 2, 0))
    assert [(p.shown_now, p.shown_before, p.trend) for p in lines] == [
        ("fewer than 3", "fewer than 3", "flat"),
        ("fewer than 3", "none", "flat"),
        ("none", "none", "flat"),
        ("none", "fewer than 3", "flat"),
        ("3", "fewer than 3", "up"),
    ]
    assert lines[1].sentence("this month", "last month") == (
        "Fewer than 3 this month, about the same as last month (none)"
    )
    assert lines[4].sentence("this month", "last month") == (
        "3 this month, up from fewer than 3 last month"
    )


@given(st.integers(0, 500), st.integers(0, 500))
def test_pulse_never_shows_a_count_of_one_or_two(now, before):
    """Whatever the counts, '1' and '2' never appear, and the trend matches the raw direction
    whenever both figures are shown exactly."""
    [line, *_] = pulse_lines(PeriodCounts(now, 0, 0, 0), PeriodCounts(before, 0, 0, 0))
    assert {line.shown_now, line.shown_before}.isdisjoint({"1", "2"})
    if now >= 3 and before >= 3:
        assert line.trend == ("up" if now > before else "down" if now < before else "flat")


def test_pulse_refuses_negative_counts():
    """A negative count is a caller bug, not something to show."""
    with pytest.raises(ValueError):
        pulse_lines(PeriodCounts(-1, 0, 0, 0), PeriodCounts(0, 0, 0, 0))


# --- alumni digest ---------------------------------------------------------------------------


def test_alumni_digest_says_how_to_come_back_and_how_to_leave():
    """One word "back" to the request address, and both ways to leave completely; no Markdown
    backticks and no "You found work" for an alumnus who may have been added by an organiser."""
    text = alumni_text()
    assert (
        'Looking again? Send the one word "back" to networking-request@lists.example.org\n'
        "and you'll get every post again."
    ) in text
    assert (
        "To leave completely, use the unsubscribe link your mail program shows,\nor send"
        ' "leave" to networking-request@lists.example.org.'
    ) in text
    assert "`" not in text and "You found work" not in text


def test_alumni_digest_has_highlights_and_the_pulse():
    """Highlights with reply counts, then the four pulse figures against last month."""
    text = alumni_text()
    assert "Highlights" in text and "The whole group" in text
    assert "1. Job fair at the library on Friday (1 reply)" in text
    assert "5 this month, up from fewer than 3 last month." in text
    assert "None this month, down from 7 last month." in text
    assert "3 this month, about the same as last month (3)." in text


def test_alumni_digest_names_no_members_and_shows_no_addresses():
    """Nothing personal: no poster's name or address appears anywhere in the body."""
    text = alumni_text([*POSTS, LATIN1, UTF8], highlights=10)
    for private in (
        "ann@",
        "bob@",
        "carol@",
        "dana@",
        "jose@",
        "zoe@",
        "555-123",
        "Ann",
        "Lee",
        "Bob",
        "Stone",
        "Carol",
        "Diaz",
        "José",
        "Pérez",
        "Zoë",
        "Ng ",
    ):
        assert private not in text, private


def test_alumni_digest_is_utf8_plain_text_from_the_list():
    """A single text/plain UTF-8 part, from the list, with the alumni subject."""
    msg = build_alumni_digest(
        make_list(),
        DOMAIN,
        [UTF8],
        PeriodCounts(0, 0, 0, 0),
        PeriodCounts(0, 0, 0, 0),
        period_start=MONTH_START,
        period_end=MONTH_END,
        tz=UTC,
    )
    back = reparse(msg)
    assert back.get_content_type() == "multipart/alternative"
    plain, html = back.get_payload()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content_charset() == "utf-8"
    assert back["Subject"] == "[networking] Alumni update, November 2026"
    assert back["From"].addresses[0].addr_spec == "networking@lists.example.org"
    assert "Café meetup ☕" in text_of(back)


def test_quiet_alumni_digest_says_so_kindly():
    """With no posts the highlights say the list was quiet, and the pulse still shows."""
    text = alumni_text([])
    assert "The list was quiet this month" in text
    assert "People who joined" in text
