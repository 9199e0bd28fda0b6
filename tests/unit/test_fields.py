"""Fields of work: close-spelling matches and post tags from the poster's own words."""

from __future__ import annotations

import pytest

from listserv.fields import DEFAULT_FIELDS, match_field, tag_fields


@pytest.mark.parametrize(
    ("typed", "field"),
    [
        ("Healthcare", "Healthcare"),
        ("HEALTHCARE", "Healthcare"),
        ("helthcare", "Healthcare"),
        ("software and it", "Software & IT"),
        ("software", "Software & IT"),
        ("IT", "Software & IT"),
        ("nurse", "Healthcare"),
        ("logistics", "Logistics & Transport"),
        ("educaton", "Education"),
    ],
)
def test_match_field_accepts_any_case_close_spellings_words_and_keywords(typed, field):
    """A member need not type the name exactly: case, a typo, one word of it or a keyword."""
    assert match_field(typed, DEFAULT_FIELDS) == field


@pytest.mark.parametrize("typed", ["", "farming", "x", "and"])
def test_match_field_refuses_what_names_no_field(typed):
    """Nothing close: None, so the command can say which fields there are."""
    assert match_field(typed, DEFAULT_FIELDS) is None


def test_tag_fields_reads_only_the_posters_own_words():
    """Quoted text and the signature do not tag a post."""
    body = (
        "Our warehouse needs forklift drivers.\n\nOn Mon, Ann wrote:\n> any nurse jobs?\n"
        "\n-- \nBob, software developer\n"
    )
    assert tag_fields("Re: jobs", body, DEFAULT_FIELDS) == ["Logistics & Transport"]


def test_tag_fields_matches_whole_words_and_acronyms_in_capitals_only():
    """'it' in a sentence is not IT, 'Nurses' is nurse, and a post naming no field has no tag."""
    assert tag_fields("", "Is it hiring? Nurses welcome.", DEFAULT_FIELDS) == ["Healthcare"]
    assert tag_fields("", "Our IT team is growing.", DEFAULT_FIELDS) == ["Software & IT"]
    assert tag_fields("", "Coffee on Friday?", DEFAULT_FIELDS) == []
