"""Tests for listserv.imports: detecting and reading member exports from other list managers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listserv.imports import (
    FORMATS,
    SNIFF_LINES,
    BadRow,
    ImportRow,
    Summary,
    UnknownFormatError,
    detect_format,
    read_members,
)

DATA = Path(__file__).parent.parent / "data" / "imports"


def sample(name: str) -> list[str]:
    with (DATA / name).open(newline="", encoding="utf-8") as fh:
        return fh.readlines()


def read(name: str, **kwargs: str) -> list[ImportRow | BadRow]:
    return list(read_members(sample(name), filename=name, **kwargs))  # type: ignore[arg-type]


def members(rows: list[ImportRow | BadRow]) -> list[tuple[int, str, str, str]]:
    return [(r.line, r.address, r.delivery, r.status) for r in rows if isinstance(r, ImportRow)]


def bad(rows: list[ImportRow | BadRow]) -> list[tuple[int, str]]:
    return [(r.line, r.text) for r in rows if isinstance(r, BadRow)]


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("listserv.csv", "listserv"),
        ("mailman3_members.txt", "mailman3-members"),
        ("mailman3_postorius.csv", "mailman3-postorius"),
        ("mailman2_list_members.txt", "mailman2"),
        ("mailman2_regular.txt", "mailman2"),
        ("mailman2_digest.txt", "mailman2"),
        ("google_groups.csv", "google-groups"),
        ("groupsio.csv", "groupsio"),
    ],
)
def test_each_sample_is_detected_as_its_format(name, fmt):
    """detect_format names the right format for every shipped sample."""
    assert detect_format(sample(name)[:SNIFF_LINES], name) == fmt


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("listserv.csv", "listserv"),
        ("mailman3_members.txt", "mailman3-members"),
        ("mailman2_list_members.txt", "mailman2"),
        ("google_groups.csv", "google-groups"),
        ("groupsio.csv", "groupsio"),
    ],
)
def test_content_alone_identifies_the_format_without_a_telling_file_name(name, fmt):
    """A neutral file name still gives the right format from the lines themselves."""
    assert detect_format(sample(name)[:SNIFF_LINES], "members.txt") == fmt


def test_a_one_column_csv_of_addresses_is_a_postorius_export():
    """Postorius writes one address per row with no header; the .csv name tells it apart."""
    assert detect_format(["anne@example.com\r\n", "bob@example.org\r\n"], "Subscribers.csv") == (
        "mailman3-postorius"
    )


def test_mailman3_has_no_members_line_is_recognised_and_skipped():
    """'<list-id> has no members' marks Mailman 3 output and yields no rows."""
    lines = ["networking.lists.example.org has no members\n"]
    assert detect_format(lines, "") == "mailman3-members"
    assert list(read_members(lines)) == []


def test_an_unknown_file_raises_a_one_line_value_error_naming_the_formats():
    """Unrecognisable content raises UnknownFormatError (a ValueError) with one actionable line."""
    with pytest.raises(UnknownFormatError) as info:
        detect_format(["id;vorname;nachname\n", "1;Anna;Schmidt\n"], "people.csv")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message and "people.csv" in message and "mailman2" in message


def test_a_csv_with_an_email_column_of_unknown_origin_is_not_guessed():
    """A header like 'email,name' is no known export: the error says to name an 'address' column."""
    with pytest.raises(UnknownFormatError, match="'address' column"):
        detect_format(["email,name\n", "anne@example.com,Anne\n"], "contacts.csv")


def test_a_list_starting_with_an_unquoted_comma_name_is_mailman3():
    """'Chen, Wei <addr>' first is Mailman 3's unquoted style, not a CSV row."""
    assert detect_format(["Chen, Wei <wei.chen@example.org>\n", "anne@example.com\n"], "") == (
        "mailman3-members"
    )


def test_file_name_hints_use_the_base_name_only():
    """A directory called mailman3 doesn't make a Mailman 2 list into a Mailman 3 one."""
    assert detect_format(["anne@example.com\n"], "/srv/mailman3-move/mailman2_all.txt") == (
        "mailman2"
    )


def test_an_empty_file_raises_saying_so():
    """A file with nothing but blank lines is reported, not guessed at."""
    with pytest.raises(UnknownFormatError, match="no lines"):
        read_members(["\n", "   \n"], filename="empty.txt")


def test_an_unknown_format_name_raises():
    """Asking for a format that doesn't exist is refused up front."""
    with pytest.raises(UnknownFormatError, match="unknown format 'majordomo'"):
        read_members([], fmt="majordomo")


# ---------------------------------------------------------------- every row of every sample


def test_listserv_sample_rows():
    """Our own CSV: delivery, status and field columns are honoured; bad values are bad rows."""
    rows = read("listserv.csv")
    assert members(rows) == [
        (2, "aisha.rahman@example.com", "regular", "active"),
        (3, "bram.devries@example.net", "digest", "active"),
        (4, "carla@example.org", "alumni", "active"),
        (5, "dev.patel@example.com", "regular", "disabled"),
        (7, "farah.k@example.co.uk", "regular", "active"),
    ]
    assert bad(rows) == [(6, "eve.stone@example.com"), (8, "gary@")]
    first = rows[0]
    assert isinstance(first, ImportRow)
    assert (first.name, first.field) == ("Aisha Rahman", "software")


def test_listserv_bad_rows_say_what_is_wrong():
    """An unknown delivery word and a broken address each get a sentence naming the value."""
    problems = [r.problem for r in read("listserv.csv") if isinstance(r, BadRow)]
    assert problems == [
        "delivery 'weekly' is not one of regular, digest, alumni",
        "'gary@' is not an email address",
    ]


def test_mailman3_members_sample_rows():
    """`mailman members` output: every valid line is a regular active member, case folded."""
    rows = read("mailman3_members.txt")
    assert members(rows) == [
        (1, "aisha.rahman@example.com", "regular", "active"),
        (2, "bram.devries@example.net", "regular", "active"),
        (3, "wei.chen@example.org", "regular", "active"),
        (4, "dolores@example.com", "regular", "active"),
        (6, "farah.k@example.co.uk", "regular", "active"),
        (7, "grace@example.edu", "regular", "active"),
        (8, "hiro.tanaka@example.jp", "regular", "active"),
        (9, "ingrid.svensson@example.se", "regular", "active"),
    ]
    assert bad(rows) == [(5, "enzo@")]


def test_mailman3_unquoted_names_with_commas_are_kept_whole():
    """Newer Mailman 3 prints 'Chen, Wei <addr>' unquoted; the comma stays in the name."""
    names = {r.address: r.name for r in read("mailman3_members.txt") if isinstance(r, ImportRow)}
    assert names["wei.chen@example.org"] == "Chen, Wei"
    assert names["dolores@example.com"] == "Dolores O'Brien"
    assert names["bram.devries@example.net"] == ""


def test_mailman3_rfc2047_names_from_older_releases_are_decoded():
    """Older Mailman 3 releases used formataddr, which encodes non-ASCII names (RFC 2047)."""
    rows = list(
        read_members(["=?utf-8?q?Zo=C3=AB_=C3=9Cnal?= <zoe@example.com>\n"], fmt="mailman3-members")
    )
    assert rows == [ImportRow(1, "zoe@example.com", "Zoë Ünal")]


def test_mailman3_digest_filter_output_is_read_with_a_default_delivery():
    """`mailman members -d any` prints no mode, so the caller says the rows are digest."""
    rows = read("mailman3_members.txt", fmt="mailman3-members", default_delivery="digest")
    assert {r.delivery for r in rows if isinstance(r, ImportRow)} == {"digest"}


def test_postorius_sample_rows():
    """Postorius's one-column export: one member per row, no names."""
    rows = read("mailman3_postorius.csv")
    assert members(rows) == [
        (1, "aisha.rahman@example.com", "regular", "active"),
        (2, "bram.devries@example.net", "regular", "active"),
        (3, "wei.chen@example.org", "regular", "active"),
        (4, "dolores@example.com", "regular", "active"),
        (6, "farah.k@example.co.uk", "regular", "active"),
    ]
    assert bad(rows) == [(5, "not-an-address")]


def test_postorius_export_with_a_header_reads_columns_by_name():
    """A Postorius CSV with a header of Mailman 3 member fields maps delivery mode and status."""
    lines = [
        "email,display_name,delivery_mode,delivery_status\r\n",
        "anne@example.com,Anne Person,mime_digests,enabled\r\n",
        "bart@example.com,,regular,by_user\r\n",
    ]
    rows = list(read_members(lines, filename="Subscribers.csv"))
    assert members(rows) == [
        (2, "anne@example.com", "digest", "active"),
        (3, "bart@example.com", "regular", "disabled"),
    ]
    assert rows[1].source_mode == "regular, by user"  # type: ignore[union-attr]


def test_mailman2_list_members_sample_rows():
    """`list_members -f`: quoted and escaped names are undone; bad lines keep their numbers."""
    rows = read("mailman2_list_members.txt")
    assert members(rows) == [
        (1, "aisha.rahman@example.com", "regular", "active"),
        (2, "bram.devries@example.net", "regular", "active"),
        (3, "carla@example.org", "regular", "active"),
        (4, "eve.stone@example.com", "regular", "active"),
        (6, "gary.oneil@example.net", "regular", "active"),
        (7, "hana.kim@example.org", "regular", "active"),
    ]
    assert bad(rows) == [(5, "frank@@example.com")]
    names = [r.name for r in rows if isinstance(r, ImportRow)]
    assert names == [
        "Aisha M. Rahman",
        "Bram de Vries",
        "",
        "Eve (Evie) Stone",
        "O'Neil, Gary",
        "Hana Kim",
    ]


def test_mailman2_regular_split_is_regular():
    """`list_members -r` output reads as regular members."""
    rows = read("mailman2_regular.txt", fmt="mailman2")
    assert members(rows) == [
        (1, "aisha.rahman@example.com", "regular", "active"),
        (2, "bram.devries@example.net", "regular", "active"),
        (3, "carla@example.org", "regular", "active"),
    ]


def test_mailman2_digest_split_takes_its_delivery_from_the_caller():
    """`list_members -d` output is read with default_delivery='digest'; bad lines still show."""
    rows = read("mailman2_digest.txt", fmt="mailman2", default_delivery="digest")
    assert members(rows) == [
        (1, "eve.stone@example.com", "digest", "active"),
        (2, "gary.oneil@example.net", "digest", "active"),
        (4, "hana.kim@example.org", "digest", "active"),
    ]
    assert bad(rows) == [(3, "hana.kim example.org")]
    assert {r.source_mode for r in rows if isinstance(r, ImportRow)} == {"digest"}


def test_mailman2_nomail_split_imports_as_disabled():
    """`list_members -n` output with default_status='disabled' says so in source_mode."""
    rows = list(read_members(["dana@example.com\n"], fmt="mailman2", default_status="disabled"))
    assert rows == [ImportRow(1, "dana@example.com", status="disabled", source_mode="nomail")]


def test_google_groups_sample_rows():
    """Google Groups: the title row is skipped; digest, abridged, no email, bouncing, banned map."""
    rows = read("google_groups.csv")
    assert members(rows) == [
        (3, "aisha.rahman@example.com", "regular", "active"),
        (4, "bram.devries@example.net", "digest", "active"),
        (5, "carla@example.org", "digest", "active"),
        (6, "dev.patel@example.com", "regular", "disabled"),
        (7, "eve.stone@example.com", "regular", "disabled"),
        (9, "gary.oneil@example.net", "regular", "left"),
    ]
    assert bad(rows) == [(8, "ben@"), (10, "hana.kim@example.org")]
    modes = {r.address: r.source_mode for r in rows if isinstance(r, ImportRow)}
    assert modes["carla@example.org"] == "abridged"
    assert modes["dev.patel@example.com"] == "email, bouncing"
    assert modes["eve.stone@example.com"] == "no email"


def test_google_groups_invited_people_are_reported_not_imported():
    """'invited' in Group status is a bad row that says they never joined."""
    problem = [r.problem for r in read("google_groups.csv") if isinstance(r, BadRow)][1]
    assert "'invited'" in problem and "not joined" in problem


def test_groupsio_sample_rows():
    """Groups.io: each Email Delivery setting and Status maps onto delivery and status."""
    rows = read("groupsio.csv")
    assert members(rows) == [
        (2, "aisha.rahman@example.com", "regular", "active"),
        (3, "bram.devries@example.net", "digest", "active"),
        (4, "carla@example.org", "digest", "active"),
        (5, "dev.patel@example.com", "digest", "active"),
        (6, "eve.stone@example.com", "regular", "disabled"),
        (7, "farah.k@example.co.uk", "regular", "disabled"),
        (8, "gary.oneil@example.net", "regular", "disabled"),
        (9, "hana.kim@example.org", "regular", "left"),
    ]
    assert bad(rows) == [(10, "ivan.example.com"), (11, "jo.lee@example.com")]
    names = {r.address: r.name for r in rows if isinstance(r, ImportRow)}
    assert names["eve.stone@example.com"] == "Stone, Eve"


def test_a_quoted_field_spanning_lines_is_numbered_by_its_first_line():
    """A CSV record with a newline inside quotes keeps the line number it starts on."""
    lines = ["address,name\n", 'anne@example.com,"Anne\n', 'Person"\n', "bob@\n"]
    rows = list(read_members(lines))
    assert [(r.line, type(r).__name__) for r in rows] == [(2, "ImportRow"), (4, "BadRow")]


def test_a_csv_without_the_needed_header_is_one_bad_row_on_line_one():
    """Forcing a CSV format on a file without its address column reports it once and stops."""
    rows = list(read_members(["anne@example.com,Anne\n", "bob@example.org,Bob\n"], fmt="listserv"))
    assert rows == [
        BadRow(
            1,
            "anne@example.com,Anne",
            "the first row must be a header with an 'address' column, so no rows were read",
        )
    ]


def test_blank_lines_and_comments_are_skipped_but_still_counted():
    """Blank and '#' lines yield nothing, and later lines keep their file line numbers."""
    rows = list(
        read_members(["# exported 2024-01-01\n", "\n", "anne@example.com\n"], fmt="mailman2")
    )
    assert rows == [ImportRow(3, "anne@example.com")]


# ---------------------------------------------------------------- summary


def test_summary_line_counts_modes_and_bad_rows():
    """The summary line splits regular, digest, no-mail and left members and counts bad rows."""
    summary = Summary("google-groups")
    for row in read("google_groups.csv"):
        summary.add(row)
    assert summary.line() == (
        "read 6 members from a Google Groups export: 1 regular, 2 digest, "
        "2 with no mail (imported as disabled), 1 banned or unsubscribed (imported as left); "
        "2 bad rows skipped"
    )
    assert (summary.members, summary.bad) == (6, 2)
    assert summary.status == {"active": 3, "disabled": 2, "left": 1}


def test_summary_line_for_the_mailman3_example_in_the_brief():
    """120 rows from Mailman 3 read as the example sentence, singular and plural right."""
    summary = Summary("mailman3-members")
    rows = (
        [ImportRow(i, f"r{i}@example.com") for i in range(100)]
        + [ImportRow(i, f"d{i}@example.com", delivery="digest") for i in range(15)]
        + [ImportRow(i, f"n{i}@example.com", status="disabled") for i in range(5)]
        + [BadRow(1, "x", "bad"), BadRow(2, "y", "bad")]
    )
    for row in rows:
        summary.add(row)
    assert summary.line() == (
        "read 120 members from a Mailman 3 export: 100 regular, 15 digest, "
        "5 with no mail (imported as disabled); 2 bad rows skipped"
    )
    one = Summary("mailman2")
    one.add(ImportRow(1, "a@example.com"))
    assert one.line() == "read 1 member from a Mailman 2 export: 1 regular"


# ---------------------------------------------------------------- streaming


class Counting:
    """A generator of n lines that counts how many were taken."""

    def __init__(self, first: str, make: str, n: int) -> None:
        self.taken, self.first, self.make, self.n = 0, first, make, n

    def __iter__(self) -> Iterator[str]:
        for i in range(self.n):
            self.taken += 1
            yield self.first if i == 0 and self.first else self.make.format(i=i)


@pytest.mark.parametrize(
    ("fmt", "first", "make"),
    [
        (None, "address,name,delivery\n", "member{i}@example.com,Member {i},digest\n"),
        (None, "", '"Member {i}" <member{i}@example.com>\n'),
        ("mailman3-postorius", "", "member{i}@example.com\r\n"),
        (
            "google-groups",
            "Email address,Nickname,Email preference\n",
            "m{i}@example.com,M,email\n",
        ),
    ],
)
def test_a_100000_line_file_is_read_lazily(fmt, first, make):
    """Taking 10 rows of a 100,000-line generator reads only those lines (plus the sniff)."""
    source = Counting(first, make, 100_000)
    rows = read_members(iter(source), fmt=fmt, filename="big.txt")
    taken = list(itertools.islice(rows, 10))
    assert len(taken) == 10 and all(isinstance(r, ImportRow) for r in taken)
    assert source.taken <= SNIFF_LINES + 12


def test_a_100000_line_file_streams_to_the_end():
    """All 100,000 members of a generated Mailman 2 list come through, in order."""
    source = Counting("", "member{i}@example.com\n", 100_000)
    count = last = 0
    for row in read_members(iter(source), fmt="mailman2"):
        count, last = count + 1, row.line
    assert (count, last, source.taken) == (100_000, 100_000, 100_000)


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=12))
def test_read_members_never_raises_on_arbitrary_lines(fmt, lines):
    """Any text yields only ImportRows with valid lower-case addresses, or BadRows with reasons."""
    for row in read_members(lines, fmt=fmt):
        assert isinstance(row, (ImportRow, BadRow))
        if isinstance(row, ImportRow):
            assert row.address == row.address.lower() and "@" in row.address
            assert row.delivery in ("regular", "digest", "alumni")
            assert row.status in ("active", "disabled", "left")
        else:
            assert row.problem and row.line >= 1


line_chars = st.sampled_from(list('abc@.,"<>;:\\ \t=?_-#\r') + ["Zoë", "\ufeff", "\n"])


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.lists(line_chars, max_size=30).map("".join), max_size=10))
def test_read_members_never_raises_on_address_like_noise(fmt, lines):
    """Lines built from address and CSV punctuation never make a reader raise."""
    rows = list(read_members(lines, fmt=fmt))
    assert all(isinstance(row, (ImportRow, BadRow)) for row in rows)


@given(lines=st.lists(st.text(max_size=80), min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_detect_format_returns_a_format_or_raises_unknown(lines):
    """detect_format never fails any other way than UnknownFormatError."""
    try:
        assert detect_format(lines, "x") in FORMATS
    except UnknownFormatError as exc:
        assert "\n" not in str(exc).strip() or "\n" in "".join(lines)
